"""Order writes that involve only orders and stock: status and shipping.

Workflows that touch the backorder queue (placing, cancelling, allocating waiting lines) live in
backorders.services.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from inventory.dbutils import Statement, bulk_add, bulk_set
from inventory.models import StockLevel, StockMovement
from inventory.selectors import stock_levels_lock

from .exceptions import NothingToShip, ShipCompleteHeld
from .models import Allocation, OrderLine, SalesOrder, Shipment, ShipmentLine
from .selectors import order_lines_lock


def status_for(*, allocated: int, shipped: int, backordered: int, cancelled: int, quantity: int) -> str:
    """An order's status from its summed line quantities."""
    Status = SalesOrder.Status
    if cancelled == quantity:
        return Status.CANCELLED
    if backordered:
        return Status.BACKORDERED
    if allocated:
        return Status.PARTIALLY_SHIPPED if shipped else Status.ALLOCATED
    return Status.SHIPPED


# status_for as SQL over one order's summed line quantities (a, s, b, c, q), for the set-based refresh below. The
# same rule, case for case (tests/orders/test_status_sql.py holds the two to the same answers).
_STATUS_CASE = (
    "CASE WHEN c = q THEN %s WHEN b <> 0 THEN %s WHEN a <> 0 THEN (CASE WHEN s <> 0 THEN %s ELSE %s END) ELSE %s END"
)
_STATUS_CASE_VALUES = [
    SalesOrder.Status.CANCELLED,
    SalesOrder.Status.BACKORDERED,
    SalesOrder.Status.PARTIALLY_SHIPPED,
    SalesOrder.Status.ALLOCATED,
    SalesOrder.Status.SHIPPED,
]
_LINE_SUMS = ("allocated", "shipped", "backordered", "cancelled", "quantity")


def orders_refresh_status_statement(
    *, order_ids: Iterable[int], line_deltas: Mapping[int, Mapping[str, int]]
) -> Statement | None:
    """orders_refresh_status for a caller that writes line quantities in the same statement (dbutils.run_together):
    `line_deltas` {line id: {field: delta}} are the changes that statement makes to these orders' lines. The data-
    modifying parts of one statement all read the same snapshot, so the status is computed from the lines as they
    are plus those deltas, i.e. from the lines as written. One UPDATE of the orders whose status changes; None when
    there are no orders.

    Elsewhere than PostgreSQL it is orders_refresh_status, run after the lines are written: give it to run_together
    after the statement that writes them."""
    order_ids = sorted(set(order_ids))
    if not order_ids:
        return None
    pks = sorted(line_deltas)
    unknown = {f for row in line_deltas.values() for f in row} - set(_LINE_SUMS)
    if unknown:
        raise ValueError(f"Not line quantities: {sorted(unknown)}")
    table = SalesOrder._meta.db_table
    lines = OrderLine._meta.db_table
    sums = ", ".join(f'sum(l."{f}" + coalesce(d."{f}", 0)) AS {f[0]}' for f in _LINE_SUMS)
    deltas = ", ".join(["%s::bigint[]"] + ["%s::integer[]"] * len(_LINE_SUMS))
    sql = (
        f'UPDATE "{table}" AS o SET "status" = x.status FROM ('
        f"SELECT order_id, {_STATUS_CASE} AS status FROM ("
        f'SELECT l."order_id", {sums} FROM "{lines}" AS l '
        f'LEFT JOIN unnest({deltas}) AS d(pk, {", ".join(_LINE_SUMS)}) ON d.pk = l."id" '
        f'WHERE l."order_id" = ANY(%s::bigint[]) GROUP BY l."order_id") AS t'
        f') AS x WHERE o."id" = x.order_id AND o."status" <> x.status'
    )
    params: list[object] = [*_STATUS_CASE_VALUES, pks]
    params += [[line_deltas[pk].get(f, 0) for pk in pks] for f in _LINE_SUMS]
    params.append(order_ids)
    return Statement(sql, params, lambda: _refresh_and_count(order_ids))


def _refresh_and_count(order_ids: list[int]) -> int:
    orders_refresh_status(order_ids=order_ids)
    return len(order_ids)


def orders_refresh_status(*, order_ids: Iterable[int]) -> None:
    """Recompute the status of these orders from their lines: one read, one UPDATE of those that change."""
    order_ids = set(order_ids)
    if not order_ids:
        return
    sums = (
        OrderLine.objects.filter(order_id__any_of=order_ids)
        .values("order_id", "order__status")
        .annotate(a=Sum("allocated"), s=Sum("shipped"), b=Sum("backordered"), c=Sum("cancelled"), q=Sum("quantity"))
    )
    changes: dict[int, dict[str, object]] = {}
    for row in sums:
        status = status_for(
            allocated=row["a"], shipped=row["s"], backordered=row["b"], cancelled=row["c"], quantity=row["q"]
        )
        if status != row["order__status"]:
            changes[row["order_id"]] = {"status": status}
    bulk_set(SalesOrder, changes)


def order_ship_blockers(*, order: SalesOrder) -> str | None:
    """Why nothing can ship now, or None."""
    totals = order.lines.aggregate(
        allocated=Sum("allocated"), waiting=Sum("backordered"), n=Count("id", filter=Q(backordered__gt=0))
    )
    if order.ship_complete and totals["waiting"]:
        return (
            f"Order {order.number} ships complete and {totals['waiting']} unit(s) on {totals['n']} line(s) are still "
            "backordered. It ships once every line is allocated, or untick 'ship complete' to ship what is here."
        )
    if not totals["allocated"]:
        return f"Order {order.number} has nothing allocated to ship."
    return None


@transaction.atomic
def order_ship(*, order: SalesOrder, acting_user: AbstractBaseUser | None = None) -> Shipment:
    """Hand every allocated unit of the order to the carrier: consumes on_hand and allocation, writes the ledger.

    A ship_complete order ships only when no line is waiting. Lock order: stock levels, then order lines.
    """
    lines = list(order.lines.all())
    stock_levels_lock(product_ids=[line.product_id for line in lines], active_only=False)
    lines = order_lines_lock(line_ids=[line.pk for line in lines])
    if order.ship_complete and any(line.backordered for line in lines):
        raise ShipCompleteHeld(order_ship_blockers(order=order) or "Order is held until complete.")
    allocations = list(Allocation.objects.filter(line__in=lines).select_related("stock_level").order_by("pk"))
    if not allocations:
        raise NothingToShip(f"Order {order.number} has nothing allocated to ship. Allocate stock first.")

    user = acting_user if acting_user is not None and acting_user.is_authenticated else None
    shipment = Shipment.objects.create(order=order, shipped_at=timezone.now(), created_by=user)
    ShipmentLine.objects.bulk_create(
        ShipmentLine(shipment=shipment, line_id=a.line_id, stock_level_id=a.stock_level_id, quantity=a.quantity)
        for a in allocations
    )
    per_level: dict[int, int] = defaultdict(int)
    per_line: dict[int, int] = defaultdict(int)
    for a in allocations:
        per_level[a.stock_level_id] += a.quantity
        per_line[a.line_id] += a.quantity
    StockMovement.objects.bulk_create(
        StockMovement(
            stock_level_id=level_id,
            movement_type=StockMovement.Type.SHIPMENT,
            quantity=-units,
            reason=f"Shipped on {order.number}",
            user=user,
            source=order.number,
        )
        for level_id, units in sorted(per_level.items())
    )
    bulk_add(StockLevel, {pk: {"on_hand": -u, "allocated": -u} for pk, u in per_level.items()})
    bulk_add(OrderLine, {pk: {"allocated": -u, "shipped": u} for pk, u in per_line.items()})
    Allocation.objects.filter(pk__in=[a.pk for a in allocations]).delete()
    orders_refresh_status(order_ids=[order.pk])
    order.refresh_from_db(fields=["status"])
    return shipment
