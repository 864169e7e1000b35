"""Test settings: PostgreSQL when one is reachable, otherwise SQLite (PostgreSQL-only tests then skip).

DATABASE_URL wins when set. Without it, the local PostgreSQL (postgres@127.0.0.1:5432) is used if it
answers; REQUIRE_POSTGRES=1 (set by CI) turns "not reachable" into an error instead of a fallback.
"""

from .base import *  # noqa: F403
from .base import DATABASES, VAR_DIR, env

LOCAL_POSTGRES_URL = "postgres://postgres@127.0.0.1:5432/backorders"
REQUIRE_POSTGRES = env.bool("REQUIRE_POSTGRES", default=False)


def _postgres_reachable(url: str) -> bool:
    try:
        import psycopg

        cfg = env.db_url_config(url)
        psycopg.connect(
            host=cfg["HOST"],
            port=cfg["PORT"] or 5432,
            user=cfg["USER"],
            password=cfg["PASSWORD"],
            dbname="postgres",
            connect_timeout=2,
        ).close()
    except Exception:
        return False
    return True


if "DATABASE_URL" not in env:
    if _postgres_reachable(LOCAL_POSTGRES_URL) or REQUIRE_POSTGRES:
        DATABASES["default"] = env.db_url_config(LOCAL_POSTGRES_URL)
    else:
        DATABASES["default"] = env.db_url_config(f"sqlite:///{VAR_DIR / 'test.sqlite3'}")
        DATABASES["default"]["OPTIONS"] = {"transaction_mode": "IMMEDIATE", "timeout": 20}
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_backorders")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production-0123456789abcdef"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_BROKER_URL = ""
CELERY_TASK_ALWAYS_EAGER = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

# Tests read the dashboard right after changing what it counts; the cache has a test of its own.
DASHBOARD_CACHE_SECONDS = 0
