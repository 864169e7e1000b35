from django.db import models
from django.db.models import F, Q

from inventory.models import Product
from orders.models import OrderLine


class Backorder(models.Model):
    """The waiting part of an order line, in its product's queue until stock fills it.

    `quantity` is what still waits (== line.backordered while waiting); `original_quantity` is what was
    first backordered. Queue order: pinned `priority` (higher first), then the policy's strategy, then line id.
    """

    class Status(models.TextChoices):
        WAITING = "waiting", "Waiting"
        FILLED = "filled", "Filled"
        CANCELLED = "cancelled", "Cancelled"

    class EtaSource(models.TextChoices):
        PURCHASE_ORDER = "purchase_order", "Purchase order"
        LEAD_TIME = "lead_time", "Lead time"
        MANUAL = "manual", "Manual"

    line = models.OneToOneField(OrderLine, on_delete=models.CASCADE, related_name="backorder")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="backorders")
    quantity = models.PositiveIntegerField(help_text="Units still waiting.")
    original_quantity = models.PositiveIntegerField(help_text="Units first backordered.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.WAITING)
    priority = models.IntegerField(default=0, help_text="Pinned priority: higher is filled first. 0 = not pinned.")
    placed_at = models.DateTimeField(help_text="When the order was placed (copied from the order for the queue).")
    eta = models.DateField(null=True, blank=True)
    eta_source = models.CharField(max_length=16, choices=EtaSource.choices, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["product_id", "-priority", "placed_at", "line_id"]
        indexes = [
            models.Index(
                fields=["product", "-priority", "placed_at", "line"],
                condition=Q(status="waiting"),
                name="backorder_queue_idx",
            ),
            models.Index(fields=["status", "created_at"], name="backorder_status_created_idx"),
            models.Index(fields=["status", "eta"], name="backorder_status_eta_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__lte=F("original_quantity")), name="backorder_quantity_lte_original"
            ),
            models.CheckConstraint(
                condition=Q(status="waiting", quantity__gt=0) | ~Q(status="waiting"),
                name="backorder_waiting_has_quantity",
            ),
        ]

    def __str__(self) -> str:
        return f"Backorder {self.pk}: {self.quantity} × {self.product.sku}"
