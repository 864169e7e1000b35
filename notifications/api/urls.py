"""Included by config/api/urls.py under /api/v1/: notifications/ and notifications/{id}/."""

from rest_framework.routers import SimpleRouter

from .views import NotificationViewSet

router = SimpleRouter()
router.register("notifications", NotificationViewSet, basename="notification")

urlpatterns = router.urls
