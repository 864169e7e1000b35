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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["status", "scheduled_for"], name="notification_due_idx"),
            models.Index(fields=["order", "kind"], name="notification_order_kind_idx"),
            models.Index(fields=["kind", "-created_at"], name="notification_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to_email} ({self.status})"
