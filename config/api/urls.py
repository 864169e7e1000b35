from django.urls import include, path

urlpatterns = [
    path("", include("inventory.api.urls")),
    path("", include("backorders.api.urls")),
    path("", include("notifications.api.urls")),
]
