from django.urls import include, path, re_path

from .errors import api_not_found

urlpatterns = [
    path("", include("inventory.api.urls")),
    path("", include("backorders.api.urls")),
    path("", include("notifications.api.urls")),
    # Last: any other path under /api/v1/ is a JSON 404 (never Django's HTML page or a slash redirect).
    re_path(r"^", api_not_found, name="api-not-found"),
]
