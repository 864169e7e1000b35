from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from inventory.models import Product, StockLevel


class Customer(models.Model):
    class Tier(models.TextChoices):
        STANDARD = "standard", "Standard"
        LOYAL = "loyal", "Loyal"
        VIP = "vip", "VIP"

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=200)
    tier = models.CharField(max_length=16, choices=Tier.choices, default=Tier.STANDARD, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["email"]

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>"

    @property
    def tier_rank(self) -> int:
        """Higher is served first under the `tier` fill strategy."""
        return TIER_RANK[self.tier]


TIER_RANK = {Customer.Tier.VIP: 3, Customer.Tier.LOYAL: 2, Customer.Tier.STANDARD: 1}


class SalesOrder(models.Model):
    class Status(models.TextChoices):
        BACKORDERED = "backordered", "Backordered"
        ALLOCATED = "allocated", "Allocated"
        PARTIALLY_SHIPPED = "partially_shipped", "Partially shipped"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"

    number = models.CharField(max_length=40, unique=True)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ALLOCATED)
    placed_at = models.DateTimeField(default=timezone.now)
    ship_complete = models.BooleanField(default=False, help_text="Ship nothing until every line is fully allocated.")
    ship_by = models.DateField(
        null=True, blank=True, help_text="The ship date promised at checkout, if one was stated."
    )
    credit_applied = models.BooleanField(
        default=False, help_text="The customer applied to the seller for credit with this order."
    )
    cash_on_delivery = models.BooleanField(default=False, help_text="COD orders are outside the FTC rule.")
    delivery_essential = models.BooleanField(
        default=False, help_text="EU/UK: the agreed delivery date was essential; the customer may terminate at once."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-placed_at", "-id"]
        permissions = [
            ("ship_salesorder", "Can allocate stock to and ship orders (warehouse)"),
            ("cancel_salesorder", "Can cancel orders or order lines (customer service)"),
        ]
        indexes = [
            models.Index(fields=["status", "-placed_at"]),
            models.Index(fields=["-placed_at", "-id"]),
            # Overdue backorders (the promised ship-by date passed): few orders promise one, so partial.
            models.Index(fields=["ship_by"], condition=Q(ship_by__isnull=False), name="salesorder_ship_by_idx"),
        ]

    def __str__(self) -> str:
        return self.number


class OrderLine(models.Model):
    """One SKU on an order. quantity == allocated + shipped + backordered + cancelled, always."""

    order = models.ForeignKey(SalesOrder, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="order_lines")
    quantity = models.PositiveIntegerField()
    allocated = models.PositiveIntegerField(default=0)
    shipped = models.PositiveIntegerField(default=0)
    backordered = models.PositiveIntegerField(default=0)
    cancelled = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["order_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "product"], name="orderline_unique_order_product"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="orderline_quantity_gt_0"),
            models.CheckConstraint(
                condition=Q(quantity=F("allocated") + F("shipped") + F("backordered") + F("cancelled")),
                name="orderline_quantities_add_up",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order.number} × {self.product.sku}"

    @property
    def outstanding(self) -> int:
        """Units still to ship: allocated now or waiting."""
        return self.allocated + self.backordered


class Allocation(models.Model):
    """Units of a stock level promised to an order line. sum per stock level == StockLevel.allocated."""

    line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="allocations")
    stock_level = models.ForeignKey(StockLevel, on_delete=models.PROTECT, related_name="allocations")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["line_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["line", "stock_level"], name="allocation_unique_line_stock_level"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="allocation_quantity_gt_0"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.line} from {self.stock_level.warehouse.code}"


class Shipment(models.Model):
    """Goods handed to the carrier."""

    order = models.ForeignKey(SalesOrder, on_delete=models.PROTECT, related_name="shipments")
    shipped_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-shipped_at", "-id"]
        indexes = [models.Index(fields=["-shipped_at", "-id"], name="shipment_shipped_at_idx")]

    def __str__(self) -> str:
        return f"Shipment {self.pk} of {self.order.number}"


class ShipmentLine(models.Model):
    shipment = models.ForeignKey(Shipment, on_delete=models.CASCADE, related_name="lines")
    line = models.ForeignKey(OrderLine, on_delete=models.PROTECT, related_name="shipment_lines")
    stock_level = models.ForeignKey(StockLevel, on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField()

    class Meta:
        ordering = ["shipment_id", "id"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="shipmentline_quantity_gt_0")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.line.product.sku}"
