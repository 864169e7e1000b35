"""Cancelling an order or part of it: releases allocation, closes backorders, refills the queue."""

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from inventory.dbutils import bulk_add
from inventory.models import StockLevel
from inventory.selectors import stock_levels_lock
from notifications.models import WebhookEndpoint
from orders.exceptions import CannotCancel
from orders.models import Allocation, OrderLine, SalesOrder
from orders.selectors import order_lines_lock
from orders.services import orders_refresh_status

from ..models import Backorder
from .allocation import FillResult, backorders_fill
from .eta import etas_recompute
from .events import backorders_emit
from .placement import LineRequest


@dataclass
class CancelResult:
    units_cancelled: int = 0
    units_released: int = 0
    backorders_closed: int = 0
    refill: FillResult = field(default_factory=FillResult)


def _requested(
    order_lines: list[OrderLine], lines: Sequence[LineRequest] | None, *, waiting_only: bool = False
) -> dict[int, int]:
    """{line pk: units to cancel}, validated against what is still outstanding (or waiting)."""
    if lines is None:
        if waiting_only:
            return {line.pk: line.backordered for line in order_lines if line.backordered}
        return {line.pk: line.outstanding for line in order_lines if line.outstanding}
    by_sku = {line.product.sku: line for line in order_lines}
    errors: dict[str, list[str]] = {}
    wanted: dict[int, int] = {}
    for i, request in enumerate(lines):
        line = by_sku.get(request.sku)
        if line is None:
            errors[f"lines[{i}].sku"] = [f"SKU {request.sku!r} is not on this order."]
            continue
        if not isinstance(request.quantity, int) or isinstance(request.quantity, bool) or request.quantity < 1:
            errors[f"lines[{i}].quantity"] = ["Must be a whole number of at least 1."]
            continue
        if line.pk in wanted:
            errors[f"lines[{i}].sku"] = [f"SKU {request.sku} is listed twice; list it once."]
            continue
        if waiting_only and request.quantity > line.backordered:
            errors[f"lines[{i}].quantity"] = [
                f"Only {line.backordered} unit(s) of {request.sku} are still waiting and can be cancelled here."
            ]
            continue
        if request.quantity > line.outstanding:
            errors[f"lines[{i}].quantity"] = [
                f"Only {line.outstanding} unit(s) of {request.sku} can still be cancelled "
                f"({line.shipped} shipped, {line.cancelled} already cancelled)."
            ]
            continue
        wanted[line.pk] = request.quantity
    if errors:
        raise CannotCancel("Some lines cannot be cancelled as asked; nothing was changed.", fields=errors)
    return wanted


@transaction.atomic
def order_cancel(
    *,
    order: SalesOrder,
    lines: Sequence[LineRequest] | None = None,
    acting_user: AbstractBaseUser | None = None,
    waiting_only: bool = False,
) -> CancelResult:
    """Cancel units of an order (all outstanding units when `lines` is None).

    Waiting (backordered) units are cancelled first, then allocated ones, whose stock is released and
    immediately offered to the next lines in the product's queue. Shipped units cannot be cancelled.
    With waiting_only, only waiting units are cancelled (all of them when `lines` is None), checked under
    the locks, so a repeated request never reaches allocated units.
    Lock order: stock levels, order lines, backorders.
    """
    product_ids = list(order.lines.values_list("product_id", flat=True))
    stock_levels_lock(product_ids=product_ids, active_only=False)
    order_lines = order_lines_lock(line_ids=order.lines.values_list("pk", flat=True))
    wanted = _requested(order_lines, lines, waiting_only=waiting_only)
    if not wanted:
        if waiting_only:
            return CancelResult()
        raise CannotCancel(f"Order {order.number} has nothing left to cancel: every unit is shipped or cancelled.")
    backorders = {
        b.line_id: b
        for b in Backorder.objects.filter(line_id__in=wanted, status=Backorder.Status.WAITING)
        .select_for_update(of=("self",))
        .order_by("pk")
    }
    # Release from the least preferred warehouse first, so what stays allocated is the best stock.
    allocations = defaultdict(list)
    for a in (
        Allocation.objects.filter(line_id__in=wanted)
        .select_related("stock_level__warehouse")
        .order_by("-stock_level__warehouse__priority", "pk")
    ):
        allocations[a.line_id].append(a)

    result = CancelResult()
    line_deltas: dict[int, dict[str, int]] = {}
    level_deltas: dict[int, dict[str, int]] = defaultdict(lambda: {"allocated": 0})
    backorder_deltas: dict[int, dict[str, int]] = {}
    closed: list[int] = []
    released_products: set[int] = set()
    allocation_deltas: dict[int, dict[str, int]] = {}
    emptied_allocations: list[int] = []
    for line in order_lines:
        units = wanted.get(line.pk, 0)
        if not units:
            continue
        from_waiting = min(units, line.backordered)
        from_allocated = units - from_waiting
        line_deltas[line.pk] = {"backordered": -from_waiting, "allocated": -from_allocated, "cancelled": units}
        if from_waiting:
            backorder = backorders[line.pk]
            backorder_deltas[backorder.pk] = {"quantity": -from_waiting}
            if backorder.quantity == from_waiting:
                closed.append(backorder.pk)
        remaining = from_allocated
        for a in allocations[line.pk]:
            if remaining <= 0:
                break
            release = min(a.quantity, remaining)
            if release == a.quantity:
                emptied_allocations.append(a.pk)
            else:
                allocation_deltas[a.pk] = {"quantity": -release}
            level_deltas[a.stock_level_id]["allocated"] -= release
            released_products.add(line.product_id)
            remaining -= release
        result.units_cancelled += units
        result.units_released += from_allocated

    if closed:
        Backorder.objects.filter(pk__in=closed).update(status=Backorder.Status.CANCELLED, closed_at=timezone.now())
    bulk_add(Backorder, backorder_deltas)
    Allocation.objects.filter(pk__in=emptied_allocations).delete()
    bulk_add(Allocation, allocation_deltas)
    bulk_add(StockLevel, level_deltas)
    bulk_add(OrderLine, line_deltas)
    orders_refresh_status(order_ids=[order.pk])
    backorders_emit(event_type=WebhookEndpoint.Event.BACKORDER_CANCELLED, backorder_ids=closed)
    result.backorders_closed = len(closed)
    if released_products:
        result.refill = backorders_fill(product_ids=released_products)
    waiting_changed = {line.product_id for line in order_lines if line.pk in wanted and line.backordered}
    etas_recompute(product_ids=waiting_changed - released_products)
    order.refresh_from_db(fields=["status"])
    return result


def order_line_units(order: SalesOrder) -> dict[str, dict[str, int]]:
    """{sku: {quantity, allocated, backordered, shipped, cancelled}} — a compact view for messages and tests."""
    return {
        row["product__sku"]: {k: row[k] for k in ("quantity", "allocated", "backordered", "shipped", "cancelled")}
        for row in order.lines.annotate(sku=F("product__sku")).values(
            "product__sku", "quantity", "allocated", "backordered", "shipped", "cancelled"
        )
    }
