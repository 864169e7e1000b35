"""Screenshots of the back office for the README, taken in headless Chromium from a running demo.

    make demo                      # in another terminal: seeded data on http://127.0.0.1:8000
    .venv/bin/python docs/make_screenshots.py [--url http://127.0.0.1:8000] [--user manager --password manager-demo]

Writes docs/screenshots/dashboard.png, backorder-queue.png and receive-purchase-order.png. Uses Debian's
/usr/bin/chromium through Playwright (apt-get install chromium; no `playwright install`).
"""

import argparse
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OUT = Path(__file__).resolve().parent / "screenshots"


def shoot_until(page: Page, path: Path, selector: str, margin: int = 24) -> None:
    """The page from the top down to the bottom of `selector`."""
    box = page.locator(selector).bounding_box()
    height = int(box["y"] + box["height"] + margin) if box else 900
    width = page.viewport_size["width"]
    page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": width, "height": height}, full_page=True)
    print(f"wrote {path.relative_to(OUT.parent.parent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--user", default="manager")
    parser.add_argument("--password", default="manager-demo")
    options = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900}, base_url=options.url)
        page.goto("/admin/login/")
        page.evaluate("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")  # more room for the lists
        page.fill("#id_username", options.user)
        page.fill("#id_password", options.password)
        with page.expect_navigation():
            page.click("input[type=submit]")

        page.goto("/admin/")
        shoot_until(page, OUT / "dashboard.png", "#dashboard")

        page.goto("/admin/backorders/backorder/?age=15-30")
        shoot_until(page, OUT / "backorder-queue.png", "#changelist")

        page.goto("/admin/inventory/purchaseorder/?status__exact=ordered")
        first = page.locator("input[name=_selected_action]").first
        if first.count():
            first.check()
            page.select_option("select[name=action]", "receive_outstanding")
            with page.expect_navigation():
                page.click("button[name=index]")
            shoot_until(page, OUT / "receive-purchase-order.png", "#receive-form")
        browser.close()


if __name__ == "__main__":
    main()
