"""Settings for `python -m bench`: the production shape (PostgreSQL, a Redis broker) on the bench's own database.

The bench passes DATABASE_URL (its own database, bench_backorders by default) and CELERY_BROKER_URL (a Redis
database of its own) to every process it starts. Sending is left to Celery workers, as in production: the
bench runs none, so each outbox row is enqueued once on commit (a real Redis publish) and stays pending; the
bench deletes its queue at the end. Emails would go nowhere (dummy backend); logging is quiet.
"""

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, env

if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise RuntimeError("The bench runs on PostgreSQL only: set DATABASE_URL=postgres://... (python -m bench does).")

DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]
SECRET_KEY = env.str("SECRET_KEY", default="bench-secret-key-not-for-production-0123456789abcdefghij")
EMAIL_BACKEND = "django.core.mail.backends.dummy.EmailBackend"

# A queue (and exchange) of the bench's own: nothing consumes it, the bench deletes it when it is done.
CELERY_TASK_DEFAULT_QUEUE = "bench-backorders"
CELERY_TASK_ROUTES = {"webhooks.*": {"queue": "bench-backorders-webhooks"}}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
