"""The pegging rule of backorders.pegging as one set-based PostgreSQL statement (what etas_recompute runs there).

backorders.pegging.peg() walks one queue in Python and stays the statement of the rule (and the path on
other databases). Here the same walk is a join of running sums, for any number of products at once:

1. queue: each waiting line's cumulative position in its product's queue (a window sum in fill order);
2. supply: each open PO line's cumulative open quantity, in arrival order (an overdue PO counts as today);
3. the PO line covering a position is the first one whose cumulative quantity reaches it: a binary search
   (width_bucket) in the product's ascending array of cumulative quantities, so no sort per line;
4. covered: arrival + handling days (source purchase_order). Not covered: today + lead time + handling
   days, never earlier than the ETA of the last covered line (ETAs never decrease along the queue); no
   lead time: that ETA; nothing at all, or discontinued: none;
5. lines whose (eta, source) changed, except manual ones, are updated and get an EtaChange row, in the
   same statement; the EtaChange rows come back for the notices.

After a receipt, repeg_after_receipt runs the same walk over only the head of each queue the receipt can have
moved (why that is enough is in its docstring).

The queue and supply parts are ORM querysets (the fill strategy's ordering lives in backorders.policies);
the merge, the update and the insert are raw SQL, which the ORM cannot express.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from django.db import connection
from django.db.models import F, Sum, Value, Window
from django.db.models.expressions import RowRange
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from inventory.models import PurchaseOrder, PurchaseOrderLine

from .models import Backorder, EtaChange
from .policies import FillStrategy

Source = Backorder.EtaSource

PEGGED_REASON = "Pegged to "
LEAD_TIME_REASON = "Lead time (no open purchase order covers it)"
NO_RESTOCK_REASON = "No restock expected"

_STATEMENT = """
WITH queue AS MATERIALIZED ({queue}),
supply AS MATERIALIZED ({supply}),
{peg}
INSERT INTO backorders_etachange (backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at)
SELECT id, old_eta, new_eta, old_source, new_source, reason, %(now)s FROM changed
RETURNING id, backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at
"""

# From the queue's positions and the supply's running sums to the changed lines updated (`changed`): the CTEs
# both statements share.
_PEG = """
ends AS (
    SELECT product_id, array_agg(covered ORDER BY covered) AS covered,
           array_agg(arrival ORDER BY covered) AS arrivals, array_agg(number ORDER BY covered) AS numbers
    FROM supply GROUP BY product_id
),
last_covered AS (
    SELECT q.product_id, max(q.position) AS position
    FROM queue q JOIN ends e ON e.product_id = q.product_id
    WHERE q.position <= e.covered[cardinality(e.covered)]
    GROUP BY q.product_id
),
pegged AS (
    SELECT q.id, q.product_id, q.eta AS old_eta, q.eta_source AS old_source,
           e.arrivals[width_bucket(q.position - 1, e.covered) + 1] AS arrival,
           e.numbers[width_bucket(q.position - 1, e.covered) + 1] AS number,
           e.arrivals[width_bucket(l.position - 1, e.covered) + 1] AS floor_arrival
    FROM queue q
    LEFT JOIN ends e ON e.product_id = q.product_id
    LEFT JOIN last_covered l ON l.product_id = q.product_id
    WHERE q.eta_source <> %(manual)s
),
fresh AS MATERIALIZED (
    SELECT g.id, g.old_eta, g.old_source, x.eta, x.source,
           CASE x.source WHEN %(po)s THEN %(pegged)s || g.number WHEN %(lead)s THEN %(lead_reason)s
                ELSE %(no_restock)s END AS reason
    FROM pegged g
    JOIN inventory_product p ON p.id = g.product_id
    LEFT JOIN inventory_supplier su ON su.id = p.supplier_id
    CROSS JOIN LATERAL (
        SELECT CASE WHEN p.discontinued THEN NULL
                    WHEN g.arrival IS NOT NULL THEN g.arrival + %(handling)s
                    ELSE greatest(%(today)s::date + coalesce(p.lead_time_days, su.lead_time_days) + %(handling)s,
                                  g.floor_arrival + %(handling)s) END AS eta,
               CASE WHEN p.discontinued THEN ''
                    WHEN g.arrival IS NOT NULL THEN %(po)s
                    WHEN coalesce(p.lead_time_days, su.lead_time_days) IS NULL AND g.floor_arrival IS NULL THEN ''
                    ELSE %(lead)s END AS source
    ) x
    WHERE g.old_eta IS DISTINCT FROM x.eta OR g.old_source <> x.source
),
changed AS (
    UPDATE backorders_backorder b SET eta = f.eta, eta_source = f.source
    FROM fresh f
    WHERE b.id = f.id
    RETURNING b.id, f.old_eta, f.old_source, f.eta AS new_eta, f.source AS new_source, f.reason
)"""


def _positions(strategy: FillStrategy) -> Window:
    return Window(
        Sum("quantity"),
        partition_by=[F("product_id")],
        order_by=strategy.queue_order(),
        frame=RowRange(start=None, end=0),
    )


def _queue_sql(product_ids: Sequence[int], strategy: FillStrategy) -> tuple[str, tuple]:
    queue = (
        Backorder.objects.filter(product_id__in=product_ids, status=Backorder.Status.WAITING)
        .annotate(position=_positions(strategy))
        .order_by()
        .values("id", "product_id", "eta", "eta_source", "position")
    )
    return queue.query.sql_with_params()


def _head_sql(product_id: int, strategy: FillStrategy, limit: int | None) -> tuple[str, tuple]:
    """The first `limit` lines of one product's queue (all of them when None) with their positions. In fill order
    with a literal LIMIT, so PostgreSQL reads the head off the queue index and stops there."""
    head = (
        Backorder.objects.filter(product_id=product_id, status=Backorder.Status.WAITING)
        .annotate(position=_positions(strategy))
        .order_by(*strategy.queue_order())
        .values("id", "product_id", "eta", "eta_source", "position")
    )
    if limit is not None:
        head = head[:limit]
    sql, params = head.query.sql_with_params()
    return f"({sql})", params


# A receipt re-pegs one or a few products: the SQL of their supply and heads is compiled once per set of products,
# day and bound, not once per receipt (an ORM compile of these window queries costs about as much as running them).
@lru_cache(maxsize=256)
def _receipt_supply_sql(product_ids: tuple[int, ...], today: date) -> tuple[str, tuple]:
    return _supply_sql(product_ids, today)


@lru_cache(maxsize=1024)
def _receipt_head_sql(product_id: int, strategy: type[FillStrategy], limit: int | None) -> tuple[str, tuple]:
    return _head_sql(product_id, strategy(), limit)


def _supply_sql(product_ids: Sequence[int], today: date) -> tuple[str, tuple]:
    supply = (
        PurchaseOrderLine.objects.filter(
            product_id__in=product_ids,
            purchase_order__status__in=PurchaseOrder.OPEN_STATUSES,
            received__lt=F("quantity"),
        )
        .annotate(raw_arrival=Coalesce("expected_date", "purchase_order__expected_date"))
        .annotate(arrival=Greatest("raw_arrival", Value(today)))
        .annotate(
            covered=Window(
                Sum(F("quantity") - F("received")),
                partition_by=[F("product_id")],
                order_by=[F("arrival").asc(), F("raw_arrival").asc(), F("id").asc()],
                frame=RowRange(start=None, end=0),
            ),
            number=F("purchase_order__number"),
        )
        .order_by()
        .values("id", "product_id", "arrival", "raw_arrival", "covered", "number")
    )
    return supply.query.sql_with_params()


def _named(today: date, handling_days: int) -> dict[str, object]:
    return {
        "po": Source.PURCHASE_ORDER,
        "lead": Source.LEAD_TIME,
        "manual": Source.MANUAL,
        "pegged": PEGGED_REASON,
        "lead_reason": LEAD_TIME_REASON,
        "no_restock": NO_RESTOCK_REASON,
        "handling": handling_days,
        "today": today,
        "now": timezone.now(),
    }


def _with_parts(named: dict[str, object], parts: Sequence[tuple[str, tuple]]) -> list[str]:
    """The ORM parts' SQL with their positional placeholders named (p0, p1, … across all parts), their values
    added to `named`."""
    out = []
    first = 0
    for sql, params in parts:
        for i, value in enumerate(params):
            named[f"p{first + i}"] = value
        out.append(_name_placeholders(sql, first))
        first += len(params)
    return out


def _change(row: Sequence) -> EtaChange:
    pk, backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at = row
    return EtaChange(
        id=pk,
        backorder_id=backorder_id,
        old_eta=old_eta,
        new_eta=new_eta,
        old_source=old_source,
        new_source=new_source,
        reason=reason,
        created_at=created_at,
    )


def repeg(*, product_ids: Sequence[int], today: date, handling_days: int, strategy: FillStrategy) -> list[EtaChange]:
    """Re-peg every waiting line of these products in one statement; returns the EtaChange rows it wrote.

    The caller holds the products' locks (backorders.services.eta.etas_recompute). PostgreSQL only."""
    named = _named(today, handling_days)
    queue_sql, supply_sql = _with_parts(named, [_queue_sql(product_ids, strategy), _supply_sql(product_ids, today)])
    sql = _STATEMENT.format(queue=queue_sql, supply=supply_sql, peg=_PEG)
    with connection.cursor() as cursor:
        cursor.execute(sql, named)
        rows = cursor.fetchall()
    return [_change(row) for row in rows]


@dataclass(frozen=True, slots=True)
class Received:
    """The PO line a receipt took units from, as the supply orders it: (arrival, raw arrival, line id)."""

    arrival: date
    raw_arrival: date
    line_id: int


_AFTER_RECEIPT = """
WITH supply AS MATERIALIZED ({supply}),
bound AS (
    SELECT * FROM unnest(%(products)s::bigint[], %(ahead)s::bigint[], %(total)s::bigint[])
        AS b(product_id, ahead, total)
),
queue AS MATERIALIZED ({heads}),
{peg},
written AS (
    INSERT INTO backorders_etachange (backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at)
    SELECT id, old_eta, new_eta, old_source, new_source, reason, %(now)s FROM changed
    RETURNING id, backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at
),
unsettled AS (
    SELECT b.product_id FROM bound b
    WHERE (SELECT min(q.position) FROM queue q WHERE q.product_id = b.product_id AND q.position > b.ahead) > b.total
)
SELECT id, backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at, NULL FROM written
UNION ALL
SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, product_id FROM unsettled
"""


def _supply_bounds(product_ids: Sequence[int], today: date, received: Mapping[int, Received]) -> dict[int, tuple]:
    """Per product, (ahead, total): the open supply before its received PO line in supply order, and all of it,
    read off the supply's running sums (the last one before that line's place; the last one). One query."""
    sql, params = _receipt_supply_sql(tuple(product_ids), today)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT product_id, arrival, raw_arrival, id, covered FROM ({sql}) AS s", params)
        rows = cursor.fetchall()
    bounds = {pk: (0, 0) for pk in product_ids}
    for product_id, arrival, raw_arrival, line_id, covered in rows:
        line = received[product_id]
        ahead, total = bounds[product_id]
        if (arrival, raw_arrival, line_id) < (line.arrival, line.raw_arrival, line.line_id):
            ahead = max(ahead, covered)
        bounds[product_id] = (ahead, max(total, covered))
    return bounds


def repeg_after_receipt(
    *, received: Mapping[int, Received | None], today: date, handling_days: int, strategy: FillStrategy
) -> list[EtaChange]:
    """Re-peg the products of a receipt, each only as far as the receipt can have changed its ETAs; returns the
    EtaChange rows written. `received`: per product, the PO line the receipt took units from, or None (re-peg
    the whole queue). The caller holds the products' locks. PostgreSQL only.

    Why a bound is enough: when a product's fill served exactly the units received on one open PO line, every
    line left waiting moved `units` closer to the head, and the supply shrank by `units` at that PO line and
    nowhere else. A line the supply ahead of that PO line (`ahead`, after the receipt) does not reach is covered
    by the same PO line as before (or still by none), so its ETA is what it was — given that it was pegged
    (the ETAs are kept pegged: every change to a queue or its supply re-pegs; the nightly job moves the day).
    So only the first lines, up to position `ahead`, are re-pegged, plus the next one; their running positions
    and the PO coverage are exact for any head of the queue, so each gets exactly what a full re-peg gives it.
    One exception: lines no PO covers take the ETA of the last covered line as a floor; if the line after the
    bound is already uncovered, that last covered line is within the bound and the floor may have moved, so
    that product's whole queue is re-pegged (a second statement, for those products only).

    Two statements otherwise, however many products and lines: the open supply's running sums (to know each
    bound), then the re-peg of the heads."""
    if not received:
        return []
    product_ids = sorted(received)
    bounded = [pk for pk in product_ids if received[pk] is not None]
    bounds = _supply_bounds(bounded, today, received) if bounded else {}
    ahead: dict[int, int | None] = {pk: bounds[pk][0] if pk in bounds else None for pk in product_ids}
    total: dict[int, int | None] = {pk: bounds[pk][1] if pk in bounds else None for pk in product_ids}
    named = _named(today, handling_days)
    named.update(products=product_ids, ahead=[ahead[pk] for pk in product_ids], total=[total[pk] for pk in product_ids])
    supply_sql, *heads = _with_parts(
        named,
        [
            _receipt_supply_sql(tuple(product_ids), today),
            *(
                _receipt_head_sql(pk, type(strategy), None if ahead[pk] is None else ahead[pk] + 1)
                for pk in product_ids
            ),
        ],
    )
    sql = _AFTER_RECEIPT.format(supply=supply_sql, heads="\nUNION ALL\n".join(heads), peg=_PEG.strip())
    with connection.cursor() as cursor:
        cursor.execute(sql, named)
        rows = cursor.fetchall()
    changes = [_change(row[:8]) for row in rows if row[8] is None]
    unsettled = [row[8] for row in rows if row[8] is not None]
    if unsettled:
        changes += repeg(product_ids=unsettled, today=today, handling_days=handling_days, strategy=strategy)
    return changes


def _name_placeholders(sql: str, first: int) -> str:
    """The ORM's `%s` placeholders as `%(pN)s`, numbered from `first` (a literal `%` in its SQL is `%%`)."""
    parts = sql.replace("%%", "\0").split("%s")
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        out += f"%(p{first + i})s" + part
    return out.replace("\0", "%%")
