"""The admin dashboard: what needs attention today, each number a link to the changelist behind it.

Selectors first (counts, in a constant number of queries however many rows there are), then the
panels a user sees (only what their permissions let them open). The Q objects here are shared with
the changelist filters in backorders/admin.py, so a number and the list it links to always agree.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.cache import cache
from django.db.models import Count, DateField, ExpressionWrapper, F, Min, Q, QuerySet, Sum
from django.urls import reverse
from django.utils import timezone

from inventory.models import PurchaseOrder
from notifications.models import Notification
from orders.models import OrderLine, SalesOrder

from .models import Backorder, BackorderPolicy, ComplianceClock
from .selectors import AGE_BUCKETS, age_bucket_q, local_midnight

WAITING = Backorder.Status.WAITING
OPEN = ComplianceClock.State.OPEN
TOP_PRODUCTS = 8
ROLLING_SHOWN = 5


# Shared filters (dashboard numbers and changelist filters)


def ship_by_passed_q(*, as_of: date, policy: BackorderPolicy) -> Q:
    """Waiting lines whose ship-by date T has passed.

    T is the compliance clock's when the daily scan has started one; before that, the date promised at
    checkout, else the profile's default counted from the order date (as the scan will compute it).
    """
    clocked = Q(line__compliance__isnull=False, line__compliance__ship_by__lt=as_of)
    stated = Q(line__compliance__isnull=True, line__order__ship_by__lt=as_of)
    if policy.compliance_profile == BackorderPolicy.ComplianceProfile.EU_CRD:
        default = Q(placed_at__date__lt=as_of - timedelta(days=policy.eu_delivery_days))
    else:
        default = Q(
            line__order__credit_applied=False, placed_at__date__lt=as_of - timedelta(days=policy.default_ship_days)
        ) | Q(line__order__credit_applied=True, placed_at__date__lt=as_of - timedelta(days=policy.credit_ship_days))
    unstated = Q(line__compliance__isnull=True, line__order__ship_by__isnull=True) & default
    return Q(status=WAITING) & (clocked | stated | unstated)


def _ship_by_passed_parts(*, as_of: date, policy: BackorderPolicy) -> tuple[QuerySet, QuerySet, QuerySet]:
    """ship_by_passed_q (waiting lines whose ship-by date T has passed) in three parts, one per way of
    knowing T, each answered from one table's index: the lines whose clock's T passed (the clocks' ship_by index);
    the lines without a clock whose order's promised date passed (the orders' ship_by index); the waiting lines
    with neither, placed longer ago than the profile's default (the (status, placed_at) index). As one OR across
    the clock and order joins, PostgreSQL joins every waiting line to both before testing it."""
    clocked = ComplianceClock.objects.order_by().filter(ship_by__lt=as_of).values("line_id")
    stated = OrderLine.objects.order_by().filter(compliance__isnull=True, order__ship_by__lt=as_of).values("pk")

    def placed_before(days: int) -> Q:
        return Q(placed_at__lt=local_midnight(as_of - timedelta(days=days)))

    if policy.compliance_profile == BackorderPolicy.ComplianceProfile.EU_CRD:
        default = placed_before(policy.eu_delivery_days)
    else:
        cash = Q(line__order__credit_applied=False) & placed_before(policy.default_ship_days)
        credit = Q(line__order__credit_applied=True) & placed_before(policy.credit_ship_days)
        default = cash | credit
    unstated = (
        Backorder.objects.order_by()
        .filter(status=Backorder.Status.WAITING, line__compliance__isnull=True, line__order__ship_by__isnull=True)
        .filter(default)
        .values("pk")
    )
    return clocked, stated, unstated


def ship_by_passed_lookup(*, as_of: date, policy: BackorderPolicy) -> tuple[QuerySet, Q]:
    """ship_by_passed_q for one list: (the backorder ids as a UNION of one index lookup per part, the same lines
    as a condition over those parts). The admin filter uses the ids when there are few, else the condition."""
    clocked, stated, unstated = _ship_by_passed_parts(as_of=as_of, policy=policy)
    waiting = Backorder.objects.order_by().filter(status=WAITING)
    clocked_ids = waiting.filter(line_id__in=clocked).values("pk")
    ids = clocked_ids.union(waiting.filter(line_id__in=stated).values("pk"), unstated)
    passed = Q(line_id__in=clocked) | Q(line_id__in=stated) | Q(pk__in=unstated)
    return ids, Q(status=WAITING) & passed


def notice_due_q(*, as_of: date, policy: BackorderPolicy) -> Q:
    """Open clocks whose delay notice (first or renewed) is due by `as_of` and not sent yet.

    The SQL form of the profiles' "notice" and "renewed_notice" decisions (backorders/compliance.py), per the
    clock's own profile: a first notice once T is within the notice lead days, or at once when the ETA is
    unknown or misses T; under us_ftc also a renewed notice before a revised date R that will be missed. The
    daily scan sends them, so a number here after the scan ran means it did not run.
    """
    lead = timedelta(days=policy.notice_lead_days)
    eta = "line__backorder__eta"
    no_eta = Q(**{f"{eta}__isnull": True})
    us_first = Q(notices_sent=0, ship_by__gte=as_of) & (
        no_eta | Q(**{f"{eta}__gt": F("ship_by")}) | Q(ship_by__lte=as_of + lead)
    )
    us_renewed = (
        Q(notices_sent__gt=0, indefinite_consent=False, revised_date__gt=as_of)
        & (Q(consent_deadline__isnull=True) | Q(consent=ComplianceClock.Consent.EXPRESS))
        & (no_eta | Q(**{f"{eta}__gt": F("revised_date")}) | Q(revised_date__lte=as_of + lead))
    )
    # eu_crd: delivery (ETA + transit days) misses the deadline, i.e. the ETA is after deadline - transit.
    latest_eta = ExpressionWrapper(F("ship_by") - timedelta(days=policy.eu_transit_days), output_field=DateField())
    eu_first = Q(notices_sent=0) & (no_eta | Q(**{f"{eta}__gt": latest_eta}) | Q(ship_by__lte=as_of + lead))
    return Q(state=OPEN, line__backordered__gt=0) & (
        Q(profile=BackorderPolicy.ComplianceProfile.US_FTC) & (us_first | us_renewed)
        | Q(profile=BackorderPolicy.ComplianceProfile.EU_CRD) & eu_first
    )


def consent_deadline_q(*, as_of: date, days: int = 7) -> Q:
    """Open clocks waiting for the customer's express consent with the deadline in the next `days` days."""
    return Q(
        state=OPEN,
        consent_deadline__gte=as_of,
        consent_deadline__lt=as_of + timedelta(days=days),
    ) & ~Q(consent=ComplianceClock.Consent.EXPRESS)


def refund_overdue_q(*, as_of: date) -> Q:
    """Cancelled lines whose refund due date has passed (the refund itself is not recorded here)."""
    return Q(refund_due_by__lt=as_of)


def rolling_cutoff(*, now, policy: BackorderPolicy):
    return now - timedelta(days=policy.rolling_backorder_days)


def purchase_orders_due_q(*, as_of: date) -> Q:
    """Open purchase orders expected by `as_of`: the goods should be at the dock."""
    return Q(status__in=PurchaseOrder.OPEN_STATUSES, expected_date__lte=as_of)


def purchase_orders_open_q() -> Q:
    """Purchase orders that can still be received: ordered or partly received (and drafts, which arrive too)."""
    return Q(status__in=[*PurchaseOrder.OPEN_STATUSES, PurchaseOrder.Status.DRAFT])


# Selectors


@dataclass
class ProductRow:
    product_id: int
    sku: str
    name: str
    units: int
    lines: int
    oldest: object  # datetime of the oldest waiting line
    days_waiting: int = 0


def backorder_counts(*, as_of: date, policy: BackorderPolicy) -> dict[str, int]:
    """Open (waiting) lines and units, per age bucket, and past their ship-by date: one query."""
    buckets = {f"age_{key}": Count("id", filter=age_bucket_q(key, as_of=as_of)) for key in AGE_BUCKETS}
    row = Backorder.objects.filter(status=WAITING).aggregate(
        lines=Count("id"),
        units=Sum("quantity"),
        past_ship_by=Count("id", filter=ship_by_passed_q(as_of=as_of, policy=policy)),
        **buckets,
    )
    return {key: value or 0 for key, value in row.items()}


def compliance_counts(*, as_of: date, policy: BackorderPolicy) -> dict[str, int]:
    """Notices due, consent deadlines this week, refunds overdue: one query."""
    return ComplianceClock.objects.aggregate(
        notices_due=Count("id", filter=notice_due_q(as_of=as_of, policy=policy)),
        consent_deadlines=Count("id", filter=consent_deadline_q(as_of=as_of)),
        refunds_overdue=Count("id", filter=refund_overdue_q(as_of=as_of)),
    )


def top_backordered_products(*, now, limit: int = TOP_PRODUCTS) -> list[ProductRow]:
    """The products with the most units waiting: one query."""
    rows = (
        Backorder.objects.filter(status=WAITING)
        .values("product_id", "product__sku", "product__name")
        .annotate(units=Sum("quantity"), lines=Count("id"), oldest=Min("placed_at"))
        .order_by("-units", "product__sku")[:limit]
    )
    return [
        ProductRow(
            r["product_id"],
            r["product__sku"],
            r["product__name"],
            r["units"],
            r["lines"],
            r["oldest"],
            (now - r["oldest"]).days,
        )
        for r in rows
    ]


def rolling_backorders_grouped(*, now, policy: BackorderPolicy):
    """Per product with waiting lines: oldest placed time, units and lines; only the rolling backorders,
    products whose queue has not emptied for policy.rolling_backorder_days (the oldest waiting line was
    placed longer ago than that)."""
    return (
        Backorder.objects.filter(status=WAITING)
        .values("product_id", "product__sku", "product__name")
        .annotate(oldest=Min("placed_at"), units=Sum("quantity"), lines=Count("id"))
        .filter(oldest__lt=rolling_cutoff(now=now, policy=policy))
    )


def rolling_backorders(*, now, policy: BackorderPolicy, limit: int = ROLLING_SHOWN) -> tuple[int, list[ProductRow]]:
    """How many products are rolling backorders, and the longest-waiting few: two queries."""
    grouped = rolling_backorders_grouped(now=now, policy=policy)
    shown = [
        ProductRow(
            r["product_id"],
            r["product__sku"],
            r["product__name"],
            r["units"],
            r["lines"],
            r["oldest"],
            (now - r["oldest"]).days,
        )
        for r in grouped.order_by("oldest", "product__sku")[:limit]
    ]
    return grouped.count(), shown


def rolling_product_ids_q(*, now, policy: BackorderPolicy) -> Q:
    """Products (for the product changelist filter) that are rolling backorders."""
    return Q(pk__in=rolling_backorders_grouped(now=now, policy=policy).values("product_id"))


# Panels


@dataclass
class Metric:
    label: str
    value: int
    url: str
    hint: str = ""
    alert: bool = False  # the number asks for action when it is not 0
    units: str = ""


@dataclass
class Bar:
    label: str
    value: int
    url: str
    color: str
    x: int = 0
    cx: int = 0
    y: int = 0
    height: int = 0


@dataclass
class Chart:
    bars: list[Bar]
    width: int = 380
    height: int = 190
    baseline: int = 150  # y of the axis; bars grow up from it
    bar_width: int = 64

    def layout(self) -> "Chart":
        biggest = max((bar.value for bar in self.bars), default=0) or 1
        room = self.baseline - 26  # leave space for the value above the tallest bar
        step = (self.width - 20) // max(len(self.bars), 1)
        for i, bar in enumerate(self.bars):
            bar.height = round(room * bar.value / biggest) if bar.value else 0
            bar.x = 10 + i * step + (step - self.bar_width) // 2
            bar.cx = bar.x + self.bar_width // 2
            bar.y = self.baseline - bar.height
        return self


@dataclass
class Dashboard:
    as_of: date
    computed_at: datetime | None = None  # set when served from the cache: the numbers are from then
    queue: list[Metric] = field(default_factory=list)
    aging: Chart | None = None
    top_products: list[ProductRow] = field(default_factory=list)
    rolling: list[ProductRow] = field(default_factory=list)
    rolling_days: int = 0
    compliance: list[Metric] = field(default_factory=list)
    warehouse: list[Metric] = field(default_factory=list)
    tasks: list[tuple[str, str]] = field(default_factory=list)  # (label, url): the role's daily work
    backorders_url: str = ""
    products_url: str = ""

    @property
    def empty(self) -> bool:
        return not (self.queue or self.compliance or self.warehouse or self.tasks)


AGE_COLORS = {"0-7": "#4c8c5a", "8-14": "#c9a227", "15-30": "#d9822b", "30+": "#c0392b"}


def _url(name: str, **query: object) -> str:
    url = reverse(name)
    return f"{url}?{urlencode(query)}" if query else url


def dashboard_for(user: AbstractBaseUser | AnonymousUser, *, as_of: date | None = None, now=None) -> Dashboard:
    """The panels `user` may open, with today's numbers. A constant number of queries (at most 9)."""
    now = now or timezone.now()
    as_of = as_of or timezone.localdate(now)
    board = Dashboard(as_of=as_of)
    policy = BackorderPolicy.current()
    backorders = "admin:backorders_backorder_changelist"

    if user.has_perm("backorders.view_backorder"):
        counts = backorder_counts(as_of=as_of, policy=policy)
        board.backorders_url = reverse(backorders)
        board.queue = [
            Metric("Open backorders", counts["lines"], reverse(backorders), "lines waiting for stock"),
            Metric("Units waiting", counts["units"], reverse(backorders), "across every open backorder"),
            Metric(
                "Past their ship-by date",
                counts["past_ship_by"],
                _url(backorders, ship_by="passed"),
                "waiting lines that should have shipped by now",
                alert=True,
            ),
        ]
        board.aging = Chart(
            [
                Bar(f"{key} days", counts[f"age_{key}"], _url(backorders, age=key), AGE_COLORS[key])
                for key in AGE_BUCKETS
            ]
        ).layout()
        board.top_products = top_backordered_products(now=now)
        count, board.rolling = rolling_backorders(now=now, policy=policy)
        board.rolling_days = policy.rolling_backorder_days
        if user.has_perm("inventory.view_product"):
            board.products_url = reverse("admin:inventory_product_changelist")
            board.queue.append(
                Metric(
                    "Rolling backorders",
                    count,
                    _url("admin:inventory_product_changelist", rolling="yes"),
                    f"products whose queue has not emptied for {policy.rolling_backorder_days} days",
                    alert=True,
                    units="products",
                )
            )

    if user.has_perm("backorders.view_complianceclock"):
        counts = compliance_counts(as_of=as_of, policy=policy)
        clocks = "admin:backorders_complianceclock_changelist"
        board.compliance = [
            Metric(
                "Delay notices due",
                counts["notices_due"],
                _url(clocks, notice="due"),
                "due by today and not sent yet (the daily scan sends them)",
                alert=True,
            ),
            Metric(
                "Consent deadlines this week",
                counts["consent_deadlines"],
                _url(clocks, deadline="week"),
                "lines cancelled unless the customer agrees to wait",
                alert=True,
            ),
            Metric(
                "Refunds overdue",
                counts["refunds_overdue"],
                _url(clocks, refund="overdue"),
                "cancelled lines past their refund due date",
                alert=True,
            ),
        ]
    if user.has_perm("notifications.view_notification"):
        pending = Notification.objects.filter(status=Notification.Status.PENDING).count()
        board.compliance.append(
            Metric(
                "Emails waiting to be sent",
                pending,
                _url("admin:notifications_notification_changelist", status__exact="pending"),
                "queued; ETA changes wait out a quiet period first",
                units="emails",
            )
        )

    if user.has_perm("orders.view_salesorder") and user.has_perm("orders.ship_salesorder"):
        ready = SalesOrder.objects.filter(status=SalesOrder.Status.ALLOCATED).count()
        board.warehouse.append(
            Metric(
                "Orders ready to ship",
                ready,
                _url("admin:orders_salesorder_changelist", status__exact=SalesOrder.Status.ALLOCATED),
                "fully allocated; select them and run Ship allocated",
                units="orders",
            )
        )
    if user.has_perm("inventory.view_purchaseorder"):
        due = PurchaseOrder.objects.filter(purchase_orders_due_q(as_of=as_of)).count()
        board.warehouse.append(
            Metric(
                "Purchase orders due in",
                due,
                _url("admin:inventory_purchaseorder_changelist", arrival="due"),
                "expected by today and not fully received",
                units="purchase orders",
            )
        )
    board.tasks = common_tasks(user)
    return board


# (permission, label, URL name, query): shortcuts to the daily work of each role, shown when allowed.
TASKS = [
    (
        "inventory.change_purchaseorder",
        "Receive a delivery",
        "admin:inventory_purchaseorder_changelist",
        {"arrival": "open"},
    ),
    ("orders.ship_salesorder", "Ship orders", "admin:orders_salesorder_changelist", {"status__exact": "allocated"}),
    ("inventory.add_stockmovement", "Adjust stock", "admin:inventory_stocklevel_adjust", {}),
    ("inventory.add_stockmovement", "Import a stock count", "admin:inventory_stocklevel_import", {}),
    ("backorders.change_backorder_eta", "Set ETAs", "admin:backorders_backorder_changelist", {}),
    ("orders.cancel_salesorder", "Cancel an order", "admin:orders_salesorder_changelist", {}),
    ("notifications.view_notification", "Customer emails", "admin:notifications_notification_changelist", {}),
    ("inventory.add_purchaseorder", "Import purchase orders", "admin:inventory_purchaseorder_import", {}),
    ("inventory.change_product", "Import products", "admin:inventory_product_import", {}),
    ("backorders.change_backorderpolicy", "Backorder policy", "admin:backorders_backorderpolicy_changelist", {}),
]


# Permissions dashboard_for looks at: users with the same answers see the same dashboard.
DASHBOARD_PERMISSIONS = (
    "backorders.view_backorder",
    "inventory.view_product",
    "backorders.view_complianceclock",
    "notifications.view_notification",
    "orders.view_salesorder",
    "orders.ship_salesorder",
    "inventory.view_purchaseorder",
    "inventory.add_product",
)


def dashboard_cached(user: AbstractBaseUser | AnonymousUser, *, refresh: bool = False) -> Dashboard:
    """dashboard_for, kept for settings.DASHBOARD_CACHE_SECONDS per set of permissions (0: always fresh).

    Its counts aggregate every open backorder (about 3 s at a million), so a busy team shares one computation
    a minute; the page says when the numbers are from and offers a refresh, and every number links to the
    live list behind it. `refresh`: compute now (and keep that)."""
    seconds = getattr(settings, "DASHBOARD_CACHE_SECONDS", 0)
    if not seconds:
        return dashboard_for(user)
    rights = "".join("1" if user.has_perm(p) else "0" for p in DASHBOARD_PERMISSIONS)
    key = f"backorders:dashboard:{timezone.localdate().isoformat()}:{rights}"
    board = None if refresh else cache.get(key)
    if board is not None:
        board.tasks = common_tasks(user)  # the user's own shortcuts (no query)
        return board
    board = dashboard_for(user)
    board.computed_at = timezone.now()
    cache.set(key, board, seconds)
    return board


def common_tasks(user: AbstractBaseUser | AnonymousUser) -> list[tuple[str, str]]:
    """The shortcuts `user` may use (importing products also needs inventory.add_product)."""
    return [
        (label, _url(name, **query))
        for permission, label, name, query in TASKS
        if user.has_perm(permission)
        and (name != "admin:inventory_product_import" or user.has_perm("inventory.add_product"))
    ]
