"""Purchase orders: create, change, cancel and receive. Every change re-pegs the ETAs of the products
it touches; a receipt puts stock on hand through the ledger and fills the queue in order."""

import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from inventory.dbutils import bulk_add_statement
from inventory.exceptions import Conflict, InvalidInput
from inventory.models import PurchaseOrder, PurchaseOrderLine, StockLevel, Supplier, Warehouse
from inventory.selectors import stock_levels_lock
from inventory.services import stock_receive_locked

from ..models import BackorderPolicy
from ..policies import FillStrategy, fill_strategy
from ..repeg import Received
from ..selectors import backorder_fill_queue
from .allocation import FillResult, backorders_fill_locked
from .eta import etas_recompute, etas_recompute_after_receipt
from .lines import acting, is_quantity, products_for_lines
from .placement import LineRequest


@dataclass(frozen=True)
class PurchaseLineRequest:
    sku: str
    quantity: int
    expected_date: date | None = None


class PurchaseOrderClosed(Conflict):
    code = "purchase_order_closed"


class OverReceipt(InvalidInput):
    code = "over_receipt"


def new_purchase_order_number() -> str:
    return f"PO-{timezone.now():%y%m%d}-{secrets.token_hex(3).upper()}"


@transaction.atomic
def purchase_order_create(
    *,
    warehouse: Warehouse,
    expected_date: date,
    lines: Sequence[PurchaseLineRequest],
    supplier: Supplier | None = None,
    number: str | None = None,
    status: str = PurchaseOrder.Status.ORDERED,
    acting_user: AbstractBaseUser | None = None,
) -> PurchaseOrder:
    """Create a purchase order (ordered by default) and re-peg the ETAs of its products."""
    if status not in (PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.ORDERED):
        raise InvalidInput("A new purchase order is a draft or ordered.", fields={"status": ["Use draft or ordered."]})
    products = products_for_lines(lines, what="purchase order")
    try:
        with transaction.atomic():
            po = PurchaseOrder.objects.create(
                number=number or new_purchase_order_number(),
                supplier=supplier,
                warehouse=warehouse,
                expected_date=expected_date,
                status=status,
                created_by=acting(acting_user),
            )
    except IntegrityError as exc:
        raise Conflict(
            f"A purchase order numbered {number} already exists. Use another number, or omit it.",
            fields={"number": ["A purchase order with this number already exists."]},
        ) from exc
    PurchaseOrderLine.objects.bulk_create(
        PurchaseOrderLine(
            purchase_order=po, product=products[line.sku], quantity=line.quantity, expected_date=line.expected_date
        )
        for line in lines
    )
    etas_recompute(product_ids=[p.pk for p in products.values()])
    return po


def _lock(purchase_order: PurchaseOrder) -> PurchaseOrder:
    return PurchaseOrder.objects.select_for_update(of=("self",)).select_related("warehouse").get(pk=purchase_order.pk)


@transaction.atomic
def purchase_order_update(
    *,
    purchase_order: PurchaseOrder,
    expected_date: date | None = None,
    status: str | None = None,
    lines: Sequence[PurchaseLineRequest] | None = None,
    acting_user: AbstractBaseUser | None = None,
) -> PurchaseOrder:
    """Change the expected date, mark a draft ordered, or set line quantities/dates (lines are upserted by SKU).

    A line's quantity cannot drop below what was already received. ETAs of every product touched re-peg.
    """
    po = _lock(purchase_order)
    if po.status in (PurchaseOrder.Status.CANCELLED, PurchaseOrder.Status.RECEIVED):
        raise PurchaseOrderClosed(f"{po.number} is {po.get_status_display().lower()} and can no longer change.")
    touched: set[int] = set()
    if expected_date is not None:
        po.expected_date = expected_date
        touched |= set(po.lines.values_list("product_id", flat=True))
    if status is not None:
        if not (po.status == PurchaseOrder.Status.DRAFT and status == PurchaseOrder.Status.ORDERED):
            raise InvalidInput(
                "Only a draft can be marked ordered here; use cancel or receive for the other changes.",
                fields={"status": [f"Cannot change {po.status} to {status}."]},
            )
        po.status = status
        touched |= set(po.lines.values_list("product_id", flat=True))
    po.save(update_fields=["expected_date", "status"])
    if lines:
        products = products_for_lines(lines, what="purchase order")
        existing = {line.product_id: line for line in po.lines.select_for_update(of=("self",)).order_by("pk")}
        errors = {}
        for i, request in enumerate(lines):
            line = existing.get(products[request.sku].pk)
            if line is not None and request.quantity < line.received:
                errors[f"lines[{i}].quantity"] = [f"{line.received} already received; the quantity cannot be less."]
        if errors:
            raise InvalidInput("Some lines cannot change as asked; nothing was changed.", fields=errors)
        for request in lines:
            product = products[request.sku]
            line = existing.get(product.pk)
            if line is None:
                PurchaseOrderLine.objects.create(
                    purchase_order=po, product=product, quantity=request.quantity, expected_date=request.expected_date
                )
            else:
                line.quantity = request.quantity
                line.expected_date = request.expected_date
                line.save(update_fields=["quantity", "expected_date"])
            touched.add(product.pk)
    etas_recompute(product_ids=touched)
    return po


@transaction.atomic
def purchase_order_cancel(
    *, purchase_order: PurchaseOrder, acting_user: AbstractBaseUser | None = None
) -> PurchaseOrder:
    """Cancel what is still outstanding (received units stay received); waiting lines re-peg."""
    po = _lock(purchase_order)
    if po.status in (PurchaseOrder.Status.CANCELLED, PurchaseOrder.Status.RECEIVED):
        raise PurchaseOrderClosed(f"{po.number} is already {po.get_status_display().lower()}.")
    po.status = PurchaseOrder.Status.CANCELLED
    po.save(update_fields=["status"])
    etas_recompute(product_ids=po.lines.values_list("product_id", flat=True))
    return po


@dataclass(frozen=True)
class WaitingEntry:
    backorder_id: int
    order_number: str
    customer_email: str
    sku: str
    quantity: int


@dataclass
class ReceiveResult:
    purchase_order: PurchaseOrder
    received: dict[str, int]
    fill: FillResult
    still_waiting: list[WaitingEntry] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        units = sum(self.received.values())
        verb = "would receive" if self.dry_run else "received"
        return f"{self.purchase_order.number}: {verb} {units} units; {self.fill.summary()}"


class _Rollback(Exception):
    def __init__(self, result: ReceiveResult) -> None:
        self.result = result


def _still_waiting(
    product_ids: Iterable[int], limit: int, strategy: FillStrategy, fill: FillResult, skus: Mapping[int, str]
) -> list[WaitingEntry]:
    """The first `limit` lines still waiting of each product, in queue order: those the fill read along with its
    head (fill.waiting_after), else one read of the queue."""
    entries: list[WaitingEntry] = []
    for product_id in sorted(product_ids):
        if product_id in fill.waiting_after:
            entries += [
                WaitingEntry(line.backorder_id, line.order_number, line.customer_email, skus[product_id], line.quantity)
                for line in fill.waiting_after[product_id][:limit]
            ]
            continue
        queue = backorder_fill_queue(product_id=product_id, strategy=strategy).values_list(
            "pk", "line__order__number", "line__order__customer__email", "product__sku", "quantity"
        )[:limit]
        entries += [WaitingEntry(*row) for row in queue]  # plain values: no model instances to build
    return entries


def purchase_order_receive(
    *,
    purchase_order: PurchaseOrder,
    lines: Sequence[LineRequest] | None = None,
    acting_user: AbstractBaseUser | None = None,
    dry_run: bool = False,
    preview_limit: int = 50,
) -> ReceiveResult:
    """Receive units of a purchase order (all outstanding when `lines` is None) and fill the queue.

    Stock goes on hand through the ledger (type receipt), then each product's waiting lines are
    filled in queue order (pinned priority, the policy's strategy, line id), partially if need be.
    With dry_run the same work runs and is rolled back: the result is the fill preview, exact for
    the moment it was taken. Over-receipt and receipts on a cancelled or received PO are refused.
    """
    try:
        with transaction.atomic():
            result = _receive(purchase_order, lines, acting_user, preview_limit)
            if dry_run:
                result.dry_run = True
                raise _Rollback(result)
    except _Rollback as rollback:
        purchase_order.refresh_from_db()
        return rollback.result
    return result


def _receive(
    purchase_order: PurchaseOrder, lines: Sequence[LineRequest] | None, acting_user, preview_limit: int
) -> ReceiveResult:
    po = _lock(purchase_order)
    if po.status == PurchaseOrder.Status.CANCELLED:
        raise PurchaseOrderClosed(f"{po.number} is cancelled; nothing can be received on it.")
    if po.status == PurchaseOrder.Status.RECEIVED:
        raise PurchaseOrderClosed(f"{po.number} is already fully received.")
    po_lines = list(po.lines.select_related("product").select_for_update(of=("self",)).order_by("pk"))
    by_sku = {line.product.sku: line for line in po_lines}
    if lines is None:
        wanted = {line.pk: line.outstanding for line in po_lines if line.outstanding}
    else:
        errors: dict[str, list[str]] = {}
        wanted = {}
        for i, request in enumerate(lines):
            line = by_sku.get(request.sku)
            if line is None:
                errors[f"lines[{i}].sku"] = [f"SKU {request.sku!r} is not on {po.number}."]
            elif not is_quantity(request.quantity):
                errors[f"lines[{i}].quantity"] = ["Must be a whole number of at least 1."]
            elif line.pk in wanted:
                errors[f"lines[{i}].sku"] = [f"SKU {request.sku} is listed twice; list it once."]
            elif request.quantity > line.outstanding:
                errors[f"lines[{i}].quantity"] = [
                    f"Only {line.outstanding} of {line.quantity} {request.sku} are still outstanding "
                    f"({line.received} received); receiving {request.quantity} would over-receive."
                ]
            else:
                wanted[line.pk] = request.quantity
        if errors:
            raise OverReceipt(f"The receipt does not match {po.number}; nothing was received.", fields=errors)
    if not wanted:
        raise PurchaseOrderClosed(f"{po.number} has nothing outstanding to receive.")

    was_open = po.status in PurchaseOrder.OPEN_STATUSES
    receiving = [line for line in po_lines if line.pk in wanted]
    product_ids = sorted({line.product_id for line in receiving})
    # One locked pass: the products (the per-SKU mutex), then every stock row of theirs, in pk order.
    levels = _stock_rows_locked(product_ids, po.warehouse)
    at_po = {level.product_id: level for level in levels if level.warehouse_id == po.warehouse_id}
    on_hand = {at_po[line.product_id].pk: wanted[line.pk] for line in receiving}
    # The ledger rows and the PO lines' received units are written with the fill's first statement, on_hand in
    # its stock UPDATE (backorders_fill_locked below).
    ledger = stock_receive_locked(
        units=on_hand,
        levels={level.pk: level for level in levels},
        reason=f"Received on {po.number}",
        source=po.number,
        acting_user=acting_user,
    )
    po_lines_received = bulk_add_statement(PurchaseOrderLine, {pk: {"received": units} for pk, units in wanted.items()})
    received = {line.product.sku: wanted[line.pk] for line in receiving}
    fully = all(line.received + wanted.get(line.pk, 0) == line.quantity for line in po_lines)
    po.status = PurchaseOrder.Status.RECEIVED if fully else PurchaseOrder.Status.PARTIALLY_RECEIVED
    po.save(update_fields=["status"])

    policy = BackorderPolicy.current()
    strategy = fill_strategy(policy.fill_strategy)
    active: dict[int, list[StockLevel]] = defaultdict(list)
    for level in levels:
        if level.warehouse.active:
            active[level.product_id].append(level)
    fill = backorders_fill_locked(
        levels_by_product=active,
        product_ids=product_ids,
        strategy=strategy,
        on_hand=on_hand,
        along=[ledger, po_lines_received],
        preview=preview_limit,
    )
    # The queue and the supply both changed: one re-peg for both, bounded to what the receipt can have moved where
    # the fill served exactly the units received (see etas_recompute_after_receipt).
    served: dict[int, int] = defaultdict(int)
    for entry in fill.entries:
        served[entry.product_id] += entry.units
    today = timezone.localdate()
    etas_recompute_after_receipt(
        received={
            line.product_id: (
                Received(
                    arrival=max(line.expected_date or po.expected_date, today),
                    raw_arrival=line.expected_date or po.expected_date,
                    line_id=line.pk,
                )
                if was_open and served[line.product_id] == wanted[line.pk]
                else None
            )
            for line in receiving
        },
        policy=policy,
        strategy=strategy,
        as_of=today,
    )
    return ReceiveResult(
        purchase_order=po,
        received=received,
        fill=fill,
        still_waiting=_still_waiting(
            product_ids, preview_limit, strategy, fill, {line.product_id: line.product.sku for line in receiving}
        ),
    )


def _stock_rows_locked(product_ids: list[int], warehouse: Warehouse) -> list[StockLevel]:
    """Lock the products and all their stock rows (stock_levels_lock), creating the receiving warehouse's rows that
    are missing first (a product's first receipt there)."""
    levels = stock_levels_lock(product_ids=product_ids, active_only=False)
    have = {level.product_id for level in levels if level.warehouse_id == warehouse.pk}
    missing = [pk for pk in product_ids if pk not in have]
    if not missing:
        return levels
    StockLevel.objects.bulk_create(
        [StockLevel(product_id=pk, warehouse=warehouse) for pk in missing], ignore_conflicts=True
    )
    return stock_levels_lock(product_ids=product_ids, active_only=False)


__all__ = [
    "OverReceipt",
    "PurchaseLineRequest",
    "PurchaseOrderClosed",
    "ReceiveResult",
    "purchase_order_cancel",
    "purchase_order_create",
    "purchase_order_receive",
    "purchase_order_update",
]
