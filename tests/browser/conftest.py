"""Real-browser tests: Playwright (from PyPI) drives Debian's chromium (launched by its path; the Playwright
browser download is not used) against pytest-django's live server.

Skipped when /usr/bin/chromium (or Playwright) is missing, unless REQUIRE_BROWSER=1 (set by .ci/run): then
they fail. Marked `postgres`: the live server and the test share a real database (transactional tests).
"""

import os

import pytest
from django.contrib.auth.models import Group, User

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("REQUIRE_BROWSER") == "1"
PASSWORD = "browser-test-pw"

# Playwright's sync API runs an event loop in this thread; the tests' own ORM calls (set-up and checks) are
# plain synchronous code all the same.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def browser_missing() -> str:
    if not os.path.exists(CHROMIUM):
        return f"no chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[test]')"
    return ""


def pytest_collection_modifyitems(config, items):
    # A conftest hook sees every collected test: act on this directory's only.
    here = [item for item in items if "/tests/browser/" in str(item.path).replace(os.sep, "/")]
    reason = browser_missing() if here else ""
    if not reason:
        return
    if REQUIRE_BROWSER:
        raise pytest.UsageError(f"REQUIRE_BROWSER=1 but the browser tests cannot run: {reason}.")
    skip = pytest.mark.skip(reason=f"real-browser test skipped: {reason}")
    for item in here:
        item.add_marker(skip)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, base_url=live_server.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def staff():
    """staff(role) -> a user in the role's group, as seed_demo creates them (password PASSWORD)."""

    def make(role: str, username: str) -> User:
        user = User.objects.create_user(username, password=PASSWORD, is_staff=True)
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def login(page):
    def log_in(username: str) -> None:
        page.goto("/admin/login/")
        page.fill("#id_username", username)
        page.fill("#id_password", PASSWORD)
        submit(page, "input[type=submit]")
        page.wait_for_selector("#site-name")

    return log_in


def submit(page, selector: str) -> None:
    """Click a button that submits a form, and wait for the page it leads to."""
    with page.expect_navigation():
        page.click(selector)


def run_action(page, changelist: str, action: str, *, pks=None) -> None:
    """On a changelist: tick the rows (all of them when pks is None), pick the action and press Go."""
    page.goto(changelist)
    if pks is None:
        page.check("#action-toggle")
    else:
        for pk in pks:
            page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", action)
    submit(page, "button[name=index]")
