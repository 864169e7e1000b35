from rest_framework import serializers

from notifications.models import Notification


class NotificationSerializer(serializers.ModelSerializer):
    """One email in the outbox: what was (or will be) sent to whom, and when. Expects select_related("order")."""

    order = serializers.CharField(
        source="order.number", read_only=True, allow_null=True, help_text="The order number, if the email is about one."
    )
    to = serializers.EmailField(source="to_email", read_only=True, help_text="The recipient's address.")

    class Meta:
        model = Notification
        fields = ["id", "order", "kind", "status", "to", "subject", "created_at", "sent_at"]
        read_only_fields = fields
