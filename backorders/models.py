from django.conf import settings
from django.db import models
from django.db.models import F, Q
from simple_history.models import HistoricalRecords

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
    history = HistoricalRecords()

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
            models.Index(fields=["status", "placed_at"], name="backorder_status_placed_idx"),
        ]
        permissions = [("change_backorder_eta", "Can set or clear a backorder's ETA (customer service)")]
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


class EtaChange(models.Model):
    """Every change of a backorder's ETA, append-only: what notifications consume and auditors read."""

    backorder = models.ForeignKey(Backorder, on_delete=models.CASCADE, related_name="eta_changes")
    old_eta = models.DateField(null=True, blank=True)
    new_eta = models.DateField(null=True, blank=True)
    old_source = models.CharField(max_length=16, blank=True)
    new_source = models.CharField(max_length=16, blank=True)
    reason = models.CharField(max_length=255)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["backorder", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.old_eta or 'none'} → {self.new_eta or 'none'} ({self.reason})"


class BackorderPolicy(models.Model):
    """The one policy row managers edit (admin, GET/PATCH policy/). Defaults come from settings."""

    class FillStrategy(models.TextChoices):
        FIFO = "fifo", "First in, first out (order placed time)"
        TIER = "tier", "Customer tier (VIP, loyal, standard), then order placed time"

    class ComplianceProfile(models.TextChoices):
        US_FTC = "us_ftc", "US FTC Mail, Internet, or Telephone Order Rule"
        EU_CRD = "eu_crd", "EU Consumer Rights Directive / UK Consumer Rights Act"

    fill_strategy = models.CharField(max_length=8, choices=FillStrategy.choices, default=FillStrategy.FIFO)
    handling_days = models.PositiveSmallIntegerField(default=1, help_text="Days from stock arrival to shipping.")
    eta_change_threshold_days = models.PositiveSmallIntegerField(
        default=2, help_text="Tell the customer when an ETA moves by at least this many days."
    )
    eta_quiet_minutes = models.PositiveSmallIntegerField(
        default=30, help_text="Wait this long before sending an ETA change, so a corrected typo sends nothing."
    )
    cancellation_offer_days = models.PositiveSmallIntegerField(
        default=14, help_text="Offer cancellation after a line has waited this many days."
    )
    status_update_days = models.PositiveSmallIntegerField(default=7, help_text="Send a status update every N days.")
    rolling_backorder_days = models.PositiveSmallIntegerField(
        default=30, help_text="A product whose queue has not emptied for this long is a rolling backorder."
    )
    status_link_days = models.PositiveSmallIntegerField(default=60, help_text="Status links in emails expire after.")
    coupon_code = models.CharField(max_length=40, blank=True, help_text="Optional goodwill coupon in offers.")
    compliance_profile = models.CharField(
        max_length=8, choices=ComplianceProfile.choices, default=ComplianceProfile.US_FTC
    )
    default_ship_days = models.PositiveSmallIntegerField(
        default=30, help_text="us_ftc: ship within this many days when no time was stated at checkout."
    )
    credit_ship_days = models.PositiveSmallIntegerField(
        default=50, help_text="us_ftc: the same when the customer applied to the seller for credit."
    )
    notice_lead_days = models.PositiveSmallIntegerField(
        default=2, help_text="Send the delay notice at the latest this many days before the ship-by date."
    )
    consent_window_days = models.PositiveSmallIntegerField(
        default=30, help_text="us_ftc: silence is consent only for a first notice with R <= T + this; else express."
    )
    refund_working_days = models.PositiveSmallIntegerField(default=7, help_text="us_ftc: refund due within.")
    credit_refund_days = models.PositiveSmallIntegerField(
        default=30, help_text="us_ftc: refund due within one billing cycle where the seller gave the credit."
    )
    holiday_country = models.CharField(
        max_length=2, default="US", help_text="Public holidays (ISO country code) skipped when counting working days."
    )
    eu_delivery_days = models.PositiveSmallIntegerField(
        default=30, help_text="eu_crd: deliver within this many days when no date was agreed."
    )
    eu_transit_days = models.PositiveSmallIntegerField(default=2, help_text="eu_crd: days from shipping to delivery.")
    eu_additional_period_days = models.PositiveSmallIntegerField(
        default=14, help_text="eu_crd: the additional period proposed in the delay notice."
    )
    eu_refund_days = models.PositiveSmallIntegerField(
        default=14, help_text="eu_crd: refund due within (calendar days)."
    )
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = "backorder policy"
        verbose_name_plural = "backorder policy"
        constraints = [models.CheckConstraint(condition=Q(id=1), name="backorderpolicy_single_row")]

    def __str__(self) -> str:
        return "Backorder policy"

    @classmethod
    def current(cls) -> "BackorderPolicy":
        """The policy. Reading it never writes: if the row is missing (a database flushed since migration 0003
        wrote it), the settings' defaults, unsaved. (A read that inserted would take a lock wherever it is
        called: a placement reads the policy before it takes its product locks, and two such inserts waiting
        on each other behind those locks deadlock.)"""
        return cls.objects.filter(pk=1).first() or cls._defaults()

    @classmethod
    def ensure(cls) -> "BackorderPolicy":
        """The policy row, created with the settings' defaults if it is missing (for those who edit it)."""
        policy, _ = cls.objects.get_or_create(pk=1, defaults=cls._defaults_fields())
        return policy

    @classmethod
    def _defaults(cls) -> "BackorderPolicy":
        return cls(pk=1, **cls._defaults_fields())

    @staticmethod
    def _defaults_fields() -> dict[str, object]:
        return {"fill_strategy": settings.BACKORDER_FILL_STRATEGY, "handling_days": settings.BACKORDER_HANDLING_DAYS}


class ComplianceClock(models.Model):
    """The consumer-law clock of one order line that waits (COMPLIANCE.md). One row per line.

    us_ftc: `ship_by` is T, `revised_date` is R from the latest notice. eu_crd: `ship_by` is the delivery
    deadline and `revised_date` the end of the additional period.
    """

    class Consent(models.TextChoices):
        NONE = "none", "None"
        DEEMED = "deemed", "Deemed (silence)"
        EXPRESS = "express", "Express"
        DECLINED = "declined", "Declined"

    class State(models.TextChoices):
        OPEN = "open", "Open"
        SHIPPED = "shipped", "Shipped"
        CANCELLED = "cancelled", "Cancelled"
        EXEMPT = "exempt", "Exempt"

    line = models.OneToOneField(OrderLine, on_delete=models.CASCADE, related_name="compliance")
    profile = models.CharField(max_length=8)
    state = models.CharField(max_length=10, choices=State.choices, default=State.OPEN)
    ship_by = models.DateField(help_text="T: ship (us_ftc) or deliver (eu_crd) by this date, inclusive.")
    revised_date = models.DateField(
        null=True, blank=True, help_text="R from the latest notice (or EU additional period end)."
    )
    notices_sent = models.PositiveSmallIntegerField(default=0)
    last_notice_on = models.DateField(null=True, blank=True)
    consent = models.CharField(max_length=10, choices=Consent.choices, default=Consent.NONE)
    consent_deadline = models.DateField(
        null=True, blank=True, help_text="Without express consent by this date (and no shipment) the line is cancelled."
    )
    indefinite_consent = models.BooleanField(default=False)
    cancelled_on = models.DateField(null=True, blank=True)
    refund_due_by = models.DateField(null=True, blank=True)
    refund_units = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["ship_by", "id"]
        indexes = [
            models.Index(fields=["state", "ship_by"], name="clock_state_ship_by_idx"),
            models.Index(fields=["state", "consent_deadline"], name="clock_state_deadline_idx"),
            models.Index(fields=["refund_due_by"], name="clock_refund_due_idx"),
            # The admin list's order and its ship-by filters (the date filter, backorders past their ship-by date).
            models.Index(fields=["ship_by", "id"], name="clock_ship_by_idx"),
        ]

    def __str__(self) -> str:
        return f"Clock for line {self.line_id}: T={self.ship_by} ({self.state})"


class ComplianceEvent(models.Model):
    """Append-only timeline per order line: every notice, consent, cancellation, shipment and refund due.

    `dedupe_key` is unique so a re-run of the scan for the same day records nothing new. `on` is the
    business date the decision was made for (the scan's --as-of), `created_at` when it was written.
    """

    class Kind(models.TextChoices):
        CLOCK_STARTED = "clock_started", "Clock started"
        NOTICE_SENT = "notice_sent", "Delay notice sent"
        RENEWED_NOTICE_SENT = "renewed_notice_sent", "Renewed notice sent"
        CONSENT_DEEMED = "consent_deemed", "Consent by silence"
        CONSENT_EXPRESS = "consent_express", "Express consent"
        CANCELLED_BY_CUSTOMER = "cancelled_by_customer", "Cancelled by the customer"
        DEEMED_CANCELLED = "deemed_cancelled", "Deemed cancelled"
        SELLER_CANCELLED = "seller_cancelled", "Cancelled by the seller"
        ADDITIONAL_PERIOD_EXPIRED = "additional_period_expired", "Additional period expired"
        SHIPPED = "shipped", "Shipped"
        REFUND_DUE = "refund_due", "Refund due"
        SUBSTITUTE_ACCEPTED = "substitute_accepted", "Substitute accepted"

    class Channel(models.TextChoices):
        SYSTEM = "system", "System (scheduled scan)"
        STATUS_PAGE = "status_page", "Customer status page"
        ADMIN = "admin", "Admin"
        API = "api", "API"

    line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="compliance_events")
    kind = models.CharField(max_length=28, choices=Kind.choices)
    on = models.DateField(help_text="The business date of the decision.")
    channel = models.CharField(max_length=12, choices=Channel.choices, default=Channel.SYSTEM)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)
    dedupe_key = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["line_id", "created_at", "id"]
        indexes = [
            models.Index(fields=["line", "created_at"], name="compliance_event_line_idx"),
            # The admin's kind and channel filters, in the list's order.
            models.Index(fields=["kind", "line", "created_at"], name="compliance_event_kind_idx"),
            models.Index(fields=["channel", "line", "created_at"], name="compliance_event_channel_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.on} {self.get_kind_display()}"


class IdempotencyKey(models.Model):
    """One `Idempotency-Key` of one API caller: the request it was first used for and the response it got.

    Claimed (status in_progress) in its own transaction before the request runs; the unique (user, key)
    constraint decides a race. The request then runs in one transaction that holds this row's lock and
    stores the response in it, so the effect and the stored response commit together. See
    backorders/idempotency.py.
    """

    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "In progress"
        COMPLETED = "completed", "Completed"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    endpoint = models.CharField(max_length=255, help_text="Method and path the key was first used for.")
    request_hash = models.CharField(max_length=64, help_text="sha256 of the canonical JSON request body.")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.IN_PROGRESS)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(help_text="When the key was first used; it expires a set time later.")
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user")]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_created_idx")]

    def __str__(self) -> str:
        return f"{self.key} ({self.get_status_display()})"
