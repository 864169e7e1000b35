"""The outbox, read-only: what was sent to whom and when (staff only: notifications.view_notification)."""

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from config.api.filters import StableOrderingFilter
from config.api.schema import error_responses
from config.api.views import NamedNotFoundMixin
from notifications.models import Notification

from .filters import NotificationFilter
from .serializers import NotificationSerializer


@extend_schema_view(
    list=extend_schema(
        summary="List customer emails",
        description=(
            "Every customer email in the outbox, newest first: pending (not sent yet), sent, failed (gave up after "
            "repeated delivery errors) or suppressed (decided not to send). Filter by order number, kind and status."
        ),
        responses={200: NotificationSerializer(many=True), **error_responses(400, 401, 403)},
    ),
    retrieve=extend_schema(
        summary="Get a customer email",
        responses={200: NotificationSerializer, **error_responses(401, 403, 404)},
    ),
)
class NotificationViewSet(
    NamedNotFoundMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Customer emails. Reading needs notifications.view_notification."""

    queryset = Notification.objects.all()
    serializer_class = NotificationSerializer
    not_found_message = "No notification with id {value!r}."
    filterset_class = NotificationFilter
    filter_backends = [DjangoFilterBackend, StableOrderingFilter]
    ordering_fields = ["created_at", "sent_at", "scheduled_for"]

    def get_queryset(self) -> QuerySet[Notification]:
        return Notification.objects.select_related("order")
