import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_wsgi_application()

# Import the URLconf (every view, the admin, the API) now rather than in each worker's first request: under
# `gunicorn --preload` (Procfile) the master does it once, before the workers fork.
get_resolver().url_patterns  # noqa: B018
