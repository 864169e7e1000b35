"""What a customer does from the order status page: take an in-stock substitute for a waiting line, keep
waiting, cancel the waiting units, or cancel the whole order. Each is one transaction; the views only call
these.

A substitute is never shipped without the customer's opt-in: `substitute_accept` is the only way one gets
onto an order, and it records the choice (time, channel, IP) on the line's compliance timeline.
"""

from dataclasses import dataclass, field
from datetime import date

from django.db import IntegrityError, transaction
from django.db.models import F, Max, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from inventory.exceptions import Conflict, InvalidInput
from inventory.models import Product
from inventory.selectors import plan_take, products_with_stock, stock_levels_lock
from notifications.models import Notification
from orders.models import OrderLine, SalesOrder
from orders.selectors import order_lines_lock
from orders.services import orders_refresh_status

from ..compliance import compliance_profile
from ..models import Backorder, BackorderPolicy, ComplianceClock, ComplianceEvent
from .allocation import FillResult
from .cancellation import order_cancel
from .compliance import clock_record_express_consent, customer_cancel_backordered, notify, record_event
from .placement import LineRequest, _LinePlan, _take_stock, _write_lines

Event = ComplianceEvent.Kind


def _queued_units() -> Subquery:
    """Units already waiting in a product's own queue (they have the first claim on its stock)."""
    return Subquery(
        Backorder.objects.filter(product=OuterRef("pk"), status=Backorder.Status.WAITING)
        .values("product")
        .annotate(units=Sum("quantity"))
        .values("units")
    )


def substitute_options(*, line: OrderLine) -> QuerySet[Product]:
    """The substitutes a waiting line can switch to now: listed for its product, not already on the order,
    and with enough free stock (available minus the product's own queue) for every waiting unit.
    Annotated with `free`."""
    if not line.backordered:
        return Product.objects.none()
    candidates = line.product.substitutes.exclude(
        pk__in=OrderLine.objects.filter(order_id=line.order_id).values("product_id")
    )
    return (
        products_with_stock(candidates)
        .annotate(free=F("total_available") - Coalesce(_queued_units(), 0))
        .filter(free__gte=line.backordered)
        .order_by("sku")
    )


def _check(*, line: OrderLine, substitute: Product, free: int) -> None:
    if not line.backordered:
        raise Conflict(f"No units of {line.product.name} are waiting any more, so there is nothing to replace.")
    if not line.product.substitutes.filter(pk=substitute.pk).exists():
        raise InvalidInput(f"{substitute.name} is not offered as a substitute for {line.product.name}.")
    if OrderLine.objects.filter(order_id=line.order_id, product=substitute).exists():
        raise Conflict(
            f"Your order already has {substitute.name}. Please contact us if you want more of it instead.",
            sku=substitute.sku,
        )
    if free < line.backordered:
        raise Conflict(
            f"Sorry, {substitute.name} is no longer in stock for {line.backordered} unit(s) "
            f"(we have {max(free, 0)}). Your {line.product.name} is still on order.",
            sku=substitute.sku,
            available=max(free, 0),
        )


def substitute_check(*, line: OrderLine, substitute: Product) -> None:
    """Would `substitute_accept` succeed right now? Raises its domain error if not. An unlocked read, for the
    confirmation page; the accept repeats every check under lock."""
    row = products_with_stock(Product.objects.filter(pk=substitute.pk)).annotate(
        free=F("total_available") - Coalesce(_queued_units(), 0)
    )
    _check(line=line, substitute=substitute, free=row.values_list("free", flat=True).first() or 0)


@transaction.atomic
def substitute_accept(
    *, line: OrderLine, substitute: Product, ip: str | None, channel: str, on: date | None = None
) -> OrderLine:
    """The customer takes `substitute` instead of the waiting units of `line`.

    The waiting units are cancelled (allocated ones stay and ship) and a new line for the same number of
    units of the substitute is allocated from stock at once, with the placement's own planning and write
    helpers. Refused with InvalidInput (not a listed substitute) or Conflict (nothing waiting, already on the
    order, not enough free stock) and nothing written. Lock order: the stock rows of every product involved
    (by pk), then the order's lines, then backorders (inside order_cancel).
    """
    today = on or timezone.localdate()
    order = line.order
    order_product_ids = set(order.lines.values_list("product_id", flat=True))
    stock_levels_lock(product_ids=order_product_ids | {substitute.pk}, active_only=False)
    line = next(x for x in order_lines_lock(line_ids=order.lines.values_list("pk", flat=True)) if x.pk == line.pk)
    levels = stock_levels_lock(product_ids=[substitute.pk])
    waiting = Backorder.objects.filter(product=substitute, status=Backorder.Status.WAITING)
    queued = waiting.aggregate(units=Coalesce(Sum("quantity"), 0))["units"]
    _check(line=line, substitute=substitute, free=sum(level.available for level in levels) - queued)

    units = line.backordered
    order_cancel(order=order, lines=[LineRequest(line.product.sku, units)])
    plan = _LinePlan(product=substitute, quantity=units, takes=plan_take(levels, units))
    try:
        with transaction.atomic():
            _write_lines(order, [plan])
    except IntegrityError as exc:  # a concurrent accept of the same substitute won the unique (order, product)
        raise Conflict(f"Your order already has {substitute.name}.", sku=substitute.sku) from exc
    _take_stock([plan])
    orders_refresh_status(order_ids=[order.pk])
    new_line = OrderLine.objects.select_related("product").get(order=order, product=substitute)
    record_event(
        line=line,
        kind=Event.SUBSTITUTE_ACCEPTED,
        on=today,
        key=f"substitute:{line.pk}:{substitute.pk}",
        channel=channel,
        ip=ip,
        units=units,
        substitute_sku=substitute.sku,
        substitute_line=new_line.pk,
    )
    return new_line


def _order_lock(order: SalesOrder) -> list[OrderLine]:
    """Lock the order's stock rows then its lines (the global lock order), so a double-submitted form
    waits for the first and then sees what it did."""
    lines = list(order.lines.values_list("pk", "product_id"))
    stock_levels_lock(product_ids=[product_id for _, product_id in lines], active_only=False)
    return order_lines_lock(line_ids=[pk for pk, _ in lines])


@transaction.atomic
def customer_keep_waiting(
    *, order: SalesOrder, channel: str, ip: str | None, on: date | None = None
) -> list[OrderLine]:
    """Express consent to wait, for every waiting line of the order (clock_record_express_consent per line).
    Returns the lines whose consent was recorded (an exempt or closed clock records nothing)."""
    lines = order.lines.select_related("product").filter(backordered__gt=0).order_by("pk")
    return [line for line in lines if clock_record_express_consent(line=line, channel=channel, ip=ip, on=on)]


@dataclass
class CustomerCancelResult:
    units: dict[str, int] = field(default_factory=dict)  # {sku: units cancelled}
    refund_due_by: date | None = None
    refill: FillResult = field(default_factory=FillResult)

    @property
    def total(self) -> int:
        return sum(self.units.values())


@transaction.atomic
def customer_cancel_waiting(
    *, order: SalesOrder, channel: str, ip: str | None, on: date | None = None
) -> CustomerCancelResult:
    """customer_cancel_backordered under the order's locks and in one transaction (all lines or none)."""
    _order_lock(order)
    units = {sku: n for sku, n in customer_cancel_backordered(order=order, channel=channel, ip=ip, on=on).items() if n}
    due = ComplianceClock.objects.filter(line__order=order, line__product__sku__in=units).aggregate(
        due=Max("refund_due_by")
    )["due"]
    return CustomerCancelResult(units=units, refund_due_by=due if units else None)


@transaction.atomic
def customer_cancel_order(
    *, order: SalesOrder, channel: str, ip: str | None, on: date | None = None
) -> CustomerCancelResult:
    """The customer cancels everything not shipped yet: the waiting units as customer_cancel_backordered does
    (clock closed, refund due, one confirmation per line), then the allocated units, whose stock is released
    and refills the next lines in each product's queue. The allocated part gets the same timeline events
    (cancelled by the customer, refund due) and one cancellation_confirmed for the order."""
    today = on or timezone.localdate()
    allocated = {line.pk: line.allocated for line in _order_lock(order) if line.allocated}
    result = customer_cancel_waiting(order=order, channel=channel, ip=ip, on=today)
    if not allocated:
        return result
    lines = list(order.lines.select_related("product").filter(pk__in=allocated).order_by("pk"))
    cancel = order_cancel(order=order, lines=[LineRequest(line.product.sku, allocated[line.pk]) for line in lines])
    refund_due = compliance_profile(BackorderPolicy.current()).refund_due(order, today)
    reason = "cancelled by the customer"
    for line in lines:
        units = allocated[line.pk]
        ComplianceClock.objects.filter(line=line).update(
            state=ComplianceClock.State.CANCELLED,
            cancelled_on=today,
            refund_due_by=refund_due,
            refund_units=F("refund_units") + units,
            consent_deadline=None,
        )
        common = {"line": line, "on": today, "channel": channel, "units": units}
        record_event(
            kind=Event.CANCELLED_BY_CUSTOMER, key=f"cancel_allocated:{line.pk}", ip=ip, reason=reason, **common
        )
        record_event(kind=Event.REFUND_DUE, key=f"refund_allocated:{line.pk}", refund_due_by=refund_due, **common)
        result.units[line.product.sku] = result.units.get(line.product.sku, 0) + units
    remaining = list(order.lines.select_related("product", "backorder").filter(shipped__gt=0).order_by("pk"))
    notify(
        kind=Notification.Kind.CANCELLATION_CONFIRMED,
        line=None,
        order=order,
        key=f"cancellation_confirmed:order:{order.pk}",
        lines=remaining,
        refund_due_by=refund_due,
        cancelled_lines=[
            {"sku": x.product.sku, "name": x.product.name, "quantity": allocated[x.pk], "units": allocated[x.pk]}
            for x in lines
        ],
        reason=reason,
    )
    result.refund_due_by = max(filter(None, [result.refund_due_by, refund_due]))
    result.refill = cancel.refill
    return result
