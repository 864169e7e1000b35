import pytest
from django.conf import settings
from django.db import connection

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_report_header(config):
    db = settings.DATABASES["default"]
    where = f"PostgreSQL {db.get('HOST')}:{db.get('PORT')}" if ON_POSTGRES else f"SQLite {db['TEST']['NAME']}"
    lines = [f"database: {where}"]
    if not ON_POSTGRES:
        lines.append("NOTICE: PostgreSQL not reachable; tests marked 'postgres' (locking, concurrency) are SKIPPED.")
    return lines


def pytest_collection_modifyitems(config, items):
    if ON_POSTGRES:
        return
    if settings.REQUIRE_POSTGRES:
        raise pytest.UsageError("REQUIRE_POSTGRES=1 but the test database is not PostgreSQL. Start PostgreSQL.")
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks, real concurrency); running on SQLite")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def assert_invariants():
    """Call at the end of a test: fails naming every broken inventory invariant."""
    from backorders.invariants import invariant_violations

    def check():
        problems = invariant_violations()
        assert problems == [], "\n".join(problems)

    return check


@pytest.fixture
def vendor():
    return connection.vendor
