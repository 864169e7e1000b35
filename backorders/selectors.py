from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from inventory.models import Product
from inventory.selectors import Availability, availability_for  # noqa: F401  (re-exported)
from orders.models import OrderLine

from .models import Backorder, BackorderPolicy
from .policies import FillStrategy


def backorder_fill_queue(*, product_id: int, strategy: FillStrategy) -> QuerySet[Backorder]:
    """The product's waiting lines in fill order (pinned priority, strategy, line id)."""
    return Backorder.objects.filter(product_id=product_id, status=Backorder.Status.WAITING).order_by(
        *strategy.queue_order()
    )


@dataclass(frozen=True, slots=True)
class QueuedLine:
    """One waiting line at the head of a queue, as much as a fill needs of it (no model instances)."""

    backorder_id: int
    line_id: int
    order_id: int
    product_id: int
    quantity: int
    order_number: str
    customer_email: str
    customer_id: int


# A receipt reads the head of one queue: its SQL is compiled once per product, strategy and LIMIT (an ORM compile
# of this join costs about a third of running it), not on every receipt.
@lru_cache(maxsize=1024)
def _fill_head_sql(product_id: int, strategy: type[FillStrategy], rows: int) -> tuple[str, tuple]:
    head = backorder_fill_queue(product_id=product_id, strategy=strategy()).values_list(
        "pk",
        "line_id",
        "line__order_id",
        "product_id",
        "quantity",
        "line__order__number",
        "line__order__customer__email",
        "line__order__customer_id",
    )[:rows]
    return head.query.sql_with_params()


def backorder_fill_head(
    *, product_id: int, strategy: FillStrategy, units: int, limit: int | None = None, beyond: int = 0
) -> tuple[list[QueuedLine], list[QueuedLine]]:
    """The head of the queue that `units` reach (lines with fewer than `units` waiting ahead of them, in order, at
    most `limit` of them), and up to `beyond` lines that come right after it.

    One query however long the queue: every waiting line holds at least one unit, so the head is among the
    first `units` lines in queue order — read with LIMIT (under fifo straight off the partial queue index,
    stopping there), and cut in Python where the units run out.
    """
    if units <= 0:
        return [], []
    reach = units if limit is None else min(units, limit)
    sql, params = _fill_head_sql(product_id, type(strategy), reach + beyond)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    head: list[QueuedLine] = []
    after: list[QueuedLine] = []
    ahead = 0
    for row in rows:
        if ahead < units and len(head) < reach:
            head.append(QueuedLine(*row))
            ahead += row[4]
        elif len(after) < beyond:
            after.append(QueuedLine(*row))
    return head, after


def waiting_product_batches(*, max_products: int, max_lines: int) -> list[list[int]]:
    """Every product with waiting lines, ascending id, in batches of at most `max_products` products and
    `max_lines` waiting lines (a product whose queue alone is longer is a batch of its own). One query."""
    counts = (
        Backorder.objects.filter(status=Backorder.Status.WAITING)
        .values("product_id")
        .annotate(lines=Count("id"))
        .order_by("product_id")
        .values_list("product_id", "lines")
    )
    batches: list[list[int]] = []
    lines_in_batch = 0
    for product_id, lines in counts:
        if not batches or len(batches[-1]) >= max_products or (batches[-1] and lines_in_batch + lines > max_lines):
            batches.append([])
            lines_in_batch = 0
        batches[-1].append(product_id)
        lines_in_batch += lines
    return batches


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
    """Waiting lines that are late: the ETA has passed, or the order's promised ship-by date has.

    The order's date is tested as `line_id IN (lines of the orders whose date passed)`: PostgreSQL reads those
    orders once through the orders' ship_by index and walks the queue index testing each line against the
    result, where through the order join it joins every waiting line to its order first."""
    late_lines = OrderLine.objects.order_by().filter(order__ship_by__lt=as_of).values("pk")
    return Q(status=Backorder.Status.WAITING) & (Q(eta__lt=as_of) | Q(line_id__in=late_lines))


def overdue_ids(*, as_of: date) -> QuerySet:
    """The same lines as a UNION of one index lookup per half: the (status, eta) index, the orders' ship_by index."""
    waiting = Backorder.objects.order_by().filter(status=Backorder.Status.WAITING)
    late_lines = OrderLine.objects.order_by().filter(order__ship_by__lt=as_of).values("pk")
    return waiting.filter(eta__lt=as_of).values("pk").union(waiting.filter(line_id__in=late_lines).values("pk"))


AGE_BUCKETS: dict[str, tuple[int, int | None]] = {
    "0-7": (0, 7),
    "8-14": (8, 14),
    "15-30": (15, 30),
    "30+": (31, None),
}


def local_midnight(day: date) -> datetime:
    """The start of `day` in the current time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


def age_bucket_q(bucket: str, *, as_of: date) -> Q:
    """Backorders whose order was placed between the bucket's day bounds before `as_of` (inclusive, local days).

    A range of placed_at itself, which the (status, placed_at) index serves (a placed_at__date bound converts
    every row's timestamp to a date before comparing, so no index can)."""
    low, high = AGE_BUCKETS[bucket]
    q = Q(placed_at__lt=local_midnight(as_of - timedelta(days=low - 1)))
    if high is not None:
        q &= Q(placed_at__gte=local_midnight(as_of - timedelta(days=high)))
    return q
