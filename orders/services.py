"""Order writes that involve only orders and stock: status and shipping.

Workflows that touch the backorder queue (placing, cancelling, allocating waiting lines) live in
backorders.services.
"""

from collections import defaultdict
from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from inventory.dbutils import bulk_add, bulk_set
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
