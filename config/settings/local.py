"""The embedded default: SQLite, eager Celery, emails to the console. Used by `make demo`."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
