"""Settings shared by every environment.

The environment is read here and nowhere else (django-environ). Each variable is listed with its
default in README.md ("Configuration").
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEVELOPMENT_SECRET_KEY = "dev-insecure-backorder-back-office-change-me"

SECRET_KEY = env.str("SECRET_KEY", default=DEVELOPMENT_SECRET_KEY)
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "backorders.admin_site.BackOfficeAdminConfig",  # django.contrib.admin with the back office's site (dashboard)
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",
    "import_export",
    "simple_history",
    "inventory",
    "orders",
    "notifications",
    "backorders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: SQLite under var/ by default. IMMEDIATE transactions make concurrent writers wait for
# the write lock (up to the timeout) instead of failing with "database is locked" mid-transaction.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# A web or Celery worker keeps its database connection between requests instead of opening one per request
# (on PostgreSQL each new connection forks a server process: milliseconds a request). A kept connection is
# checked before a request reuses it, so a restarted database costs a reconnect, not an error.
DATABASES["default"]["CONN_MAX_AGE"] = env.int(
    "CONN_MAX_AGE", default=600 if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" else 0
)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Django's ModelBackend, reading a user's own and group permissions in one statement (config/auth_backends.py).
AUTHENTICATION_BACKENDS = ["config.auth_backends.ModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# The shop, as customers see it in emails and on the status page.
SHOP_NAME = env.str("SHOP_NAME", default="Demo Outfitters")
SHOP_SUPPORT_EMAIL = env.str("SHOP_SUPPORT_EMAIL", default="support@demo-outfitters.example")
SHOP_BASE_URL = env.str("SHOP_BASE_URL", default="http://127.0.0.1:8000")

# Email: console by default; EMAIL_URL=smtp://user:pass@host:port (or smtp+tls://) for real SMTP.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=f"{SHOP_NAME} <{SHOP_SUPPORT_EMAIL}>")

# Celery: no broker configured means tasks run eagerly in-process (the embedded default).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_IGNORE_RESULT = True
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# Backorder policy defaults (the BackorderPolicy row starts from these; managers edit it).
BACKORDER_FILL_STRATEGY = env.str("BACKORDER_FILL_STRATEGY", default="fifo")
BACKORDER_HANDLING_DAYS = env.int("BACKORDER_HANDLING_DAYS", default=1)

# How long an API Idempotency-Key is remembered (a retry with it returns the first response).
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
# The admin dashboard's counts aggregate every open backorder (seconds at a million): staff with the same
# permissions share one count for this long (0: count on every visit). The page says when it counted.
DASHBOARD_CACHE_SECONDS = env.int("DASHBOARD_CACHE_SECONDS", default=60)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "config.api.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["config.api.permissions.ModelPermissions"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "config.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "config.api.errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Backorder back office API",
    "DESCRIPTION": "Orders, stock, backorders and purchase orders. Errors are JSON {code, detail, fields?}.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}

# Periodic jobs (django-celery-beat syncs these into its tables; edit times in the admin).
from celery.schedules import crontab  # noqa: E402

CELERY_BEAT_SCHEDULE = {
    "scan-backorders-daily": {"task": "backorders.scan", "schedule": crontab(hour=6, minute=0)},
    "recompute-etas-nightly": {"task": "backorders.recompute_etas", "schedule": crontab(hour=2, minute=30)},
    "purge-idempotency-keys-nightly": {
        "task": "backorders.purge_idempotency_keys",
        "schedule": crontab(hour=3, minute=15),
    },
    "dispatch-notifications": {"task": "notifications.dispatch", "schedule": 60.0},
    "dispatch-webhooks": {"task": "webhooks.dispatch", "schedule": 60.0},
}
# Webhook deliveries wait on other people's servers (up to 10 s each): a queue and worker of their own
# (Procfile `worker-webhooks`), so a slow endpoint never holds up emails or the scheduled scans.
CELERY_TASK_ROUTES = {"webhooks.*": {"queue": "webhooks"}}
