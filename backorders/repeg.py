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

The queue and supply parts are ORM querysets (the fill strategy's ordering lives in backorders.policies);
the merge, the update and the insert are raw SQL, which the ORM cannot express.
"""

from collections.abc import Sequence
from datetime import date

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
)
INSERT INTO backorders_etachange (backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at)
SELECT id, old_eta, new_eta, old_source, new_source, reason, %(now)s FROM changed
RETURNING id, backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at
"""


def _queue_sql(product_ids: Sequence[int], strategy: FillStrategy) -> tuple[str, tuple]:
    queue = (
        Backorder.objects.filter(product_id__in=product_ids, status=Backorder.Status.WAITING)
        .annotate(
            position=Window(
                Sum("quantity"),
                partition_by=[F("product_id")],
                order_by=strategy.queue_order(),
                frame=RowRange(start=None, end=0),
            )
        )
        .order_by()
        .values("id", "product_id", "eta", "eta_source", "position")
    )
    return queue.query.sql_with_params()


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
        .values("product_id", "arrival", "covered", "number")
    )
    return supply.query.sql_with_params()


def repeg(*, product_ids: Sequence[int], today: date, handling_days: int, strategy: FillStrategy) -> list[EtaChange]:
    """Re-peg every waiting line of these products in one statement; returns the EtaChange rows it wrote.

    The caller holds the products' locks (backorders.services.eta.etas_recompute). PostgreSQL only."""
    queue_sql, queue_params = _queue_sql(product_ids, strategy)
    supply_sql, supply_params = _supply_sql(product_ids, today)
    # The ORM's parts use positional placeholders; the rest is named: turn the parts' into literals' slots.
    named = {
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
    for i, value in enumerate([*queue_params, *supply_params]):
        named[f"p{i}"] = value
    queue_sql = _name_placeholders(queue_sql, 0)
    supply_sql = _name_placeholders(supply_sql, len(queue_params))
    sql = _STATEMENT.format(queue=queue_sql, supply=supply_sql)
    with connection.cursor() as cursor:
        cursor.execute(sql, named)
        rows = cursor.fetchall()
    return [
        EtaChange(
            id=pk,
            backorder_id=backorder_id,
            old_eta=old_eta,
            new_eta=new_eta,
            old_source=old_source,
            new_source=new_source,
            reason=reason,
            created_at=created_at,
        )
        for pk, backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at in rows
    ]


def _name_placeholders(sql: str, first: int) -> str:
    """The ORM's `%s` placeholders as `%(pN)s`, numbered from `first` (a literal `%` in its SQL is `%%`)."""
    parts = sql.replace("%%", "\0").split("%s")
    out = parts[0]
    for i, part in enumerate(parts[1:]):
        out += f"%(p{first + i})s" + part
    return out.replace("\0", "%%")
