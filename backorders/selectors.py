from datetime import date, timedelta

from django.db.models import F, Q, QuerySet, Sum, Window
from django.db.models.expressions import RowRange
from django.utils import timezone

from inventory.models import Product
from inventory.selectors import Availability, availability_for  # noqa: F401  (re-exported)

from .models import Backorder, BackorderPolicy
from .policies import FillStrategy


def backorder_fill_queue(*, product_id: int, strategy: FillStrategy) -> QuerySet[Backorder]:
    """The product's waiting lines in fill order (pinned priority, strategy, line id)."""
    return Backorder.objects.filter(product_id=product_id, status=Backorder.Status.WAITING).order_by(
        *strategy.queue_order()
    )


def backorder_fill_candidates(*, product_id: int, strategy: FillStrategy, units: int) -> list[Backorder]:
    """The head of the queue that `units` reach: lines with fewer than `units` waiting ahead of them.

    One ordered read however long the queue: a running sum over the queue order, filtered in SQL.
    Each row carries `units_ahead` (the waiting quantity in front of it).
    """
    queue = (
        backorder_fill_queue(product_id=product_id, strategy=strategy)
        .annotate(
            running=Window(Sum("quantity"), order_by=strategy.queue_order(), frame=RowRange(start=None, end=0)),
        )
        .annotate(units_ahead=F("running") - F("quantity"))
        .filter(units_ahead__lt=units)
        .select_related("line__order__customer")
        .only(
            "id",
            "line_id",
            "quantity",
            "product_id",
            "placed_at",
            "priority",
            "line__order__number",
            "line__order__customer__email",
            "line__order__customer__tier",
        )
    )
    return list(queue.order_by(*strategy.queue_order()))


def lead_time_eta(*, product: Product, as_of: date | None = None, handling_days: int | None = None) -> date | None:
    """today + the product's lead time (else its usual supplier's) + handling days.

    None when the product cannot be restocked (discontinued) or no lead time is known.
    """
    lead_time = product.effective_lead_time_days
    if product.discontinued or lead_time is None:
        return None
    if handling_days is None:
        handling_days = BackorderPolicy.current().handling_days
    today = as_of or timezone.localdate()
    return today + timedelta(days=lead_time + handling_days)


def product_next_eta(*, product: Product, available: int, as_of: date | None = None) -> date | None:
    """The ETA a new one-unit order would get now: None when in stock or not orderable.

    Pegged like a line at the end of the queue: the PO whose open quantity covers every waiting unit
    plus one, else lead time, never earlier than the lines already waiting.
    """
    from .pegging import open_supply, peg

    if available > 0 or not product.is_backorderable:
        return None
    today = as_of or timezone.localdate()
    handling = BackorderPolicy.current().handling_days
    waiting = (
        Backorder.objects.filter(product=product, status=Backorder.Status.WAITING).aggregate(s=Sum("quantity"))["s"]
        or 0
    )
    pegs = peg(
        [waiting, 1] if waiting else [1],
        open_supply(product_ids=[product.pk], as_of=today).get(product.pk, []),
        lead_eta=lead_time_eta(product=product, as_of=today, handling_days=handling),
        handling_days=handling,
        restockable=not product.discontinued,
    )
    return pegs[-1].eta


def overdue_q(*, as_of: date) -> Q:
    """Waiting lines that are late: the ETA has passed, or the order's promised ship-by date has."""
    return Q(status=Backorder.Status.WAITING) & (Q(eta__lt=as_of) | Q(line__order__ship_by__lt=as_of))


AGE_BUCKETS: dict[str, tuple[int, int | None]] = {
    "0-7": (0, 7),
    "8-14": (8, 14),
    "15-30": (15, 30),
    "30+": (31, None),
}


def age_bucket_q(bucket: str, *, as_of: date) -> Q:
    """Backorders whose order was placed between the bucket's day bounds before `as_of` (inclusive)."""
    low, high = AGE_BUCKETS[bucket]
    q = Q(placed_at__date__lte=as_of - timedelta(days=low))
    if high is not None:
        q &= Q(placed_at__date__gte=as_of - timedelta(days=high))
    return q
