from django.db import models
from django.utils import timezone

from orders.models import Customer, OrderLine, SalesOrder


class Notification(models.Model):
    """The outbox: one row per customer email, written in the transaction of the change that caused it.

    `dedupe_key` is unique, so a retried decision never creates a second email; sending locks the row
    and skips it once sent, so a retried delivery never sends twice.
    """

    class Kind(models.TextChoices):
        BACKORDER_CREATED = "backorder_created", "Backorder created"
        ETA_CHANGED = "eta_changed", "ETA changed"
        DELAY_NOTICE = "delay_notice", "Delay option notice"
        RENEWED_DELAY_NOTICE = "renewed_delay_notice", "Renewed delay option notice"
        CANCELLATION_OFFER = "cancellation_offer", "Cancellation offer"
        STATUS_UPDATE = "status_update", "Status update"
        BACKORDER_FILLED = "backorder_filled", "Backorder filled"
        CANCELLATION_CONFIRMED = "cancellation_confirmed", "Cancellation confirmed"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        SUPPRESSED = "suppressed", "Suppressed"

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="notifications")
    order = models.ForeignKey(SalesOrder, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    line = models.ForeignKey(OrderLine, null=True, blank=True, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING)
    dedupe_key = models.CharField(max_length=200, unique=True)
    to_email = models.EmailField()
    subject = models.CharField(max_length=255)
    body_text = models.TextField()
    body_html = models.TextField()
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    scheduled_for = models.DateTimeField(default=timezone.now, help_text="Not sent before this time.")
    sent_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True, help_text="Facts the sender decided on (e.g. the previous ETA).")
    rendered = models.BooleanField(
        default=True,
        help_text="False while subject and bodies are still to be rendered (bulk emails are rendered by the worker "
        "that sends them, at the latest just before sending).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "scheduled_for"], name="notification_due_idx"),
            models.Index(fields=["id"], condition=models.Q(rendered=False), name="notification_unrendered_idx"),
            models.Index(fields=["order", "kind"], name="notification_order_kind_idx"),
            models.Index(fields=["kind", "-created_at"], name="notification_kind_idx"),
            models.Index(fields=["-created_at", "-id"], name="notification_recent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to_email} ({self.status})"


class WebhookEndpoint(models.Model):
    """An integration (CRM, automation tool) that receives backorder events, signed with its secret."""

    class Event(models.TextChoices):
        BACKORDER_CREATED = "backorder.created", "backorder.created"
        BACKORDER_ETA_CHANGED = "backorder.eta_changed", "backorder.eta_changed"
        BACKORDER_FILLED = "backorder.filled", "backorder.filled"
        BACKORDER_CANCELLED = "backorder.cancelled", "backorder.cancelled"
        ORDER_SHIPPED = "order.shipped", "order.shipped"

    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=128, help_text="Shared secret for the HMAC-SHA256 signature.")
    event_types = models.JSONField(default=list, help_text="Events to deliver; empty = all.")
    active = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["url", "id"]

    def __str__(self) -> str:
        return self.description or self.url

    def wants(self, event_type: str) -> bool:
        return self.active and (not self.event_types or event_type in self.event_types)


class WebhookDelivery(models.Model):
    """One event for one endpoint: the webhook outbox and delivery log."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event_type = models.CharField(max_length=40)
    event_id = models.UUIDField(help_text="Stable id of the event (the same for every endpoint and every retry).")
    payload = models.JSONField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["endpoint", "event_id"], name="webhookdelivery_unique_endpoint_event")
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="webhook_due_idx"),
            models.Index(fields=["endpoint", "-created_at"], name="webhook_endpoint_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} → {self.endpoint} ({self.status})"
