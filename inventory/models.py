from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords


class Warehouse(models.Model):
    code = models.SlugField(max_length=32, unique=True, help_text="Short code used in the API, e.g. 'MAIN'.")
    name = models.CharField(max_length=120)
    priority = models.PositiveSmallIntegerField(
        default=10, help_text="Allocation order: lower numbers are used first (1 = first choice)."
    )
    active = models.BooleanField(default=True, help_text="Inactive warehouses are never allocated from.")

    class Meta:
        ordering = ["priority", "code"]

    def __str__(self) -> str:
        return f"{self.code} — {self.name}"


class Product(models.Model):
    sku = models.CharField("SKU", max_length=64, unique=True)
    name = models.CharField(max_length=200)
    backorders_allowed = models.BooleanField(
        default=True, help_text="Accept orders beyond available stock and let them wait for a restock."
    )
    discontinued = models.BooleanField(
        default=False, help_text="No restock will come: the product is never backordered and has no ETA."
    )
    lead_time_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Days from ordering to arrival; used for ETAs not covered by a PO."
    )
    supplier = models.ForeignKey(
        "Supplier",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="products",
        help_text="Usual supplier: its lead time applies when the product has none.",
    )
    ftc_exempt = models.BooleanField(
        "FTC exempt",
        default=False,
        help_text="Not covered by the FTC mail order rule (e.g. plants, seeds, subscriptions after the first).",
    )
    substitutes = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="substitute_for",
        help_text="Products offered instead when this one is backordered (only in-stock ones are shown).",
    )
    safety_stock = models.PositiveIntegerField(default=0)
    reorder_point = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["sku"]
        indexes = [models.Index(fields=["discontinued", "backorders_allowed"])]

    def __str__(self) -> str:
        return f"{self.sku} — {self.name}"

    @property
    def is_backorderable(self) -> bool:
        return self.backorders_allowed and not self.discontinued

    @property
    def effective_lead_time_days(self) -> int | None:
        if self.lead_time_days is not None:
            return self.lead_time_days
        return self.supplier.lead_time_days if self.supplier_id else None


class StockLevel(models.Model):
    """Units of one product in one warehouse. Changed only through inventory services."""

    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="stock_levels")
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="stock_levels")
    on_hand = models.IntegerField(default=0)
    allocated = models.IntegerField(default=0)

    class Meta:
        ordering = ["product_id", "warehouse__priority", "warehouse_id"]
        constraints = [
            models.UniqueConstraint(fields=["product", "warehouse"], name="stocklevel_unique_product_warehouse"),
            models.CheckConstraint(condition=Q(allocated__gte=0), name="stocklevel_allocated_gte_0"),
            models.CheckConstraint(condition=Q(allocated__lte=F("on_hand")), name="stocklevel_allocated_lte_on_hand"),
        ]

    def __str__(self) -> str:
        return f"{self.product.sku} @ {self.warehouse.code}: {self.on_hand} on hand, {self.allocated} allocated"

    @property
    def available(self) -> int:
        return self.on_hand - self.allocated


class StockMovement(models.Model):
    """The stock ledger: every change of on_hand, append-only. sum(quantity) == on_hand per stock level."""

    class Type(models.TextChoices):
        ADJUSTMENT = "adjustment", "Adjustment"
        RECEIPT = "receipt", "Purchase order receipt"
        SHIPMENT = "shipment", "Shipment"
        RETURN = "return", "Customer return"

    stock_level = models.ForeignKey(StockLevel, on_delete=models.PROTECT, related_name="movements")
    movement_type = models.CharField(max_length=16, choices=Type.choices)
    quantity = models.IntegerField(help_text="Signed change of on_hand.")
    reason = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=120, blank=True, help_text="What caused it: 'admin', 'api', 'SO-…', 'PO-…'.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["stock_level", "created_at"]), models.Index(fields=["movement_type"])]
        constraints = [models.CheckConstraint(condition=~Q(quantity=0), name="stockmovement_quantity_not_zero")]

    def __str__(self) -> str:
        return f"{self.quantity:+d} {self.get_movement_type_display()} ({self.reason})"


class Supplier(models.Model):
    name = models.CharField(max_length=200, unique=True)
    email = models.EmailField(blank=True)
    lead_time_days = models.PositiveSmallIntegerField(
        default=14, help_text="Usual days from ordering to arrival; used for products without their own lead time."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PurchaseOrder(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        ORDERED = "ordered", "Ordered"
        PARTIALLY_RECEIVED = "partially_received", "Partially received"
        RECEIVED = "received", "Received"
        CANCELLED = "cancelled", "Cancelled"

    OPEN_STATUSES = (Status.ORDERED, Status.PARTIALLY_RECEIVED)

    number = models.CharField(max_length=40, unique=True)
    supplier = models.ForeignKey(
        Supplier, null=True, blank=True, on_delete=models.PROTECT, related_name="purchase_orders"
    )
    warehouse = models.ForeignKey(Warehouse, on_delete=models.PROTECT, related_name="purchase_orders")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.ORDERED)
    expected_date = models.DateField(help_text="When the goods are expected to arrive.")
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    history = HistoricalRecords()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "expected_date"])]

    def __str__(self) -> str:
        return self.number

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class PurchaseOrderLine(models.Model):
    purchase_order = models.ForeignKey(PurchaseOrder, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="purchase_order_lines")
    quantity = models.PositiveIntegerField()
    received = models.PositiveIntegerField(default=0)
    expected_date = models.DateField(null=True, blank=True, help_text="Overrides the purchase order's date.")

    class Meta:
        ordering = ["purchase_order_id", "id"]
        constraints = [
            models.UniqueConstraint(fields=["purchase_order", "product"], name="poline_unique_po_product"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="poline_quantity_gt_0"),
            models.CheckConstraint(condition=Q(received__lte=F("quantity")), name="poline_received_lte_quantity"),
        ]
        indexes = [models.Index(fields=["product", "expected_date"])]

    def __str__(self) -> str:
        return f"{self.purchase_order.number} × {self.product.sku}"

    @property
    def outstanding(self) -> int:
        return self.quantity - self.received

    @property
    def arrival_date(self):
        return self.expected_date or self.purchase_order.expected_date
