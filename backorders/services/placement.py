"""Placing an order: allocate across warehouses, backorder the shortfall, or reject the whole order."""

import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.utils import timezone

from inventory.dbutils import bulk_add, insert_unless_conflict, reads_in_one_trip
from inventory.exceptions import InsufficientStock, InvalidInput, Shortage
from inventory.models import Product, StockLevel
from inventory.selectors import (
    plan_take,
    stock_available_lock,
    stock_available_lock_reads,
    stock_levels_for_skus,
    stock_levels_lock,
)
from notifications.models import WebhookEndpoint
from notifications.webhooks import webhook_endpoints_for
from orders.models import Allocation, Customer, OrderLine, SalesOrder
from orders.selectors import order_lines_attach
from orders.services import status_for

from ..exceptions import DuplicateOrderNumber
from ..models import Backorder
from .eta import (
    NewLine,
    PlacedPegging,
    QueueTail,
    peg_placed_locked,
    placed_pegging,
    queue_tails_from_rows,
    queue_tails_read,
)
from .events import Event, backorders_emit
from .lines import acting, products_for_lines
from .notices import backorder_created_email


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int


@dataclass(frozen=True)
class CustomerRequest:
    email: str
    name: str
    tier: str | None = None


@dataclass
class _LinePlan:
    product: Product
    quantity: int
    takes: list[tuple[StockLevel, int]]

    @property
    def allocated(self) -> int:
        return sum(units for _, units in self.takes)

    @property
    def backordered(self) -> int:
        return self.quantity - self.allocated


class _StalePlan(Exception):
    """The unlocked read was overtaken by a concurrent change; redo the plan under lock."""


def _plan(lines: Sequence[LineRequest], products: dict[str, Product], levels: list[StockLevel]) -> list[_LinePlan]:
    by_product: dict[int, list[StockLevel]] = defaultdict(list)
    for level in levels:
        by_product[level.product_id].append(level)
    plans = []
    for line in lines:
        product = products[line.sku]
        plans.append(_LinePlan(product, line.quantity, plan_take(by_product[product.pk], line.quantity)))
    return plans


def _shortages(plans: list[_LinePlan]) -> list[Shortage]:
    return [
        Shortage(sku=p.product.sku, requested=p.quantity, available=p.allocated)
        for p in plans
        if p.backordered and not p.product.is_backorderable
    ]


def _plan_holds(plans: list[_LinePlan], locked: list[tuple[int, int, int]]) -> bool:
    """Under lock: every planned take is still available, and a backordered line could not get more.
    `locked`: (stock row id, product id, available) of the products' active stock rows (stock_available_lock)."""
    fresh = {pk: available for pk, _, available in locked}
    for plan in plans:
        taken = dict((level.pk, units) for level, units in plan.takes)
        if any(fresh.get(pk, 0) < units for pk, units in taken.items()):
            return False
        if plan.backordered and any(
            available > taken.get(pk, 0) for pk, product_id, available in locked if product_id == plan.product.pk
        ):
            return False
    return True


def _write_lines(order: SalesOrder, plans: list[_LinePlan]) -> list[NewLine]:
    """Insert the order's lines, allocations and backorders; returns the backorders (for their ETAs)."""
    lines = OrderLine.objects.bulk_create(
        OrderLine(order=order, product=p.product, quantity=p.quantity, allocated=p.allocated, backordered=p.backordered)
        for p in plans
    )
    Allocation.objects.bulk_create(
        Allocation(line=line, stock_level=level, quantity=units)
        for line, plan in zip(lines, plans, strict=True)
        for level, units in plan.takes
    )
    backorders = Backorder.objects.bulk_create(
        Backorder(
            line=line,
            product=plan.product,
            quantity=plan.backordered,
            original_quantity=plan.backordered,
            placed_at=order.placed_at,
        )
        for line, plan in zip(lines, plans, strict=True)
        if plan.backordered
    )
    if any(b.pk is None for b in backorders):  # a database that returns no ids from a bulk insert
        backorders = list(Backorder.objects.filter(line__order=order, status=Backorder.Status.WAITING))
    return [NewLine(b.pk, b.product_id, b.quantity, b.eta, b.eta_source) for b in backorders]


@dataclass(frozen=True)
class _Waiting:
    """What an order that backorders needs besides its locks, read before it takes them."""

    pegging: PlacedPegging
    endpoints: Sequence[WebhookEndpoint]  # those that want backorder.created


def _waiting_prepare(plans: list[_LinePlan]) -> _Waiting:
    return _Waiting(
        pegging=placed_pegging(products=[p.product for p in plans if p.backordered]),
        endpoints=webhook_endpoints_for(Event.BACKORDER_CREATED),
    )


def _write_plan(order: SalesOrder, plans: list[_LinePlan]) -> list[NewLine]:
    """_write_lines, and the order's backorder_created email if it waits for something (rendered when sent, so
    it is written before the locks are taken and the lines get their ETAs)."""
    new_lines = _write_lines(order, plans)
    if new_lines:
        backorder_created_email(order=order)
    return new_lines


_PLAN_SAVEPOINT = "backorders_placement_plan"


def _write_then_confirm(
    order: SalesOrder, plans: list[_LinePlan], product_ids: list[int], waiting: _Waiting | None
) -> tuple[list[NewLine], dict[int, QueueTail] | None] | None:
    """Write the plan, then confirm it under lock (_confirm): the new backorders (and the tails of their queues,
    if _confirm read them), or None when a concurrent change overtook the plan (then nothing of it stays: rolled
    back to a savepoint taken before the writes). On PostgreSQL the savepoint is left open on success (it ends
    with the transaction), so no RELEASE runs while the locks are held."""
    if connection.vendor != "postgresql":
        try:
            with transaction.atomic():
                new_lines = _write_plan(order, plans)
                if not _confirm(plans, product_ids, waiting)[0]:
                    raise _StalePlan
                return new_lines, None
        except _StalePlan:
            return None
    with connection.cursor() as cursor:
        cursor.execute(f"SAVEPOINT {_PLAN_SAVEPOINT}")
    new_lines = _write_plan(order, plans)
    held, tails = _confirm(plans, product_ids, waiting)
    if held:
        return new_lines, tails
    with connection.cursor() as cursor:
        cursor.execute(f"ROLLBACK TO SAVEPOINT {_PLAN_SAVEPOINT}")
    return None


def _confirm(
    plans: list[_LinePlan], product_ids: list[int], waiting: _Waiting | None
) -> tuple[bool, dict[int, QueueTail] | None]:
    """Make the planned takes stick, under lock; False when a concurrent change overtook the plan.

    The products and their stock rows are locked in pk order (the global lock order, so multi-row orders
    never deadlock), the plan is checked against the locked values, then one UPDATE. (The one-row order on
    PostgreSQL never gets here: _take_one_row.) On PostgreSQL, when the order backorders, the tails of the
    queues its lines join are read in the same round trip, right after the locks (for pegging them), and
    returned with True.
    """
    tails = None
    if connection.vendor == "postgresql":
        reads = stock_available_lock_reads(product_ids=product_ids)
        locks = len(reads)
        joined = sorted({p.product.pk for p in plans if p.backordered})
        if waiting is not None and joined:
            reads.append(queue_tails_read(joined, waiting.pegging.strategy))
        results = reads_in_one_trip(*reads)
        locked = results[locks - 1]
        if len(results) > locks:
            tails = queue_tails_from_rows(results[locks], as_of=waiting.pegging.today)
    else:
        locked = stock_available_lock(product_ids=product_ids)
    if not _plan_holds(plans, locked):
        return False, None
    _take_stock(plans)
    return True, tails


# The common order — one line, allocated whole from one stock row — in one statement: the guarded UPDATE takes
# the row lock, and only if it succeeded are the line and its allocation inserted (from its RETURNING). The row
# is held from this statement to the commit. On a stale plan nothing is written, but an UPDATE that waited for a
# concurrent one and then failed its re-check still holds that row's lock, which would invert the lock order
# (products before stock rows) on the way to the locked retry: so a savepoint comes first and a failure rolls
# back to it (which releases the lock). A success leaves the savepoint open; it ends with the transaction.
_ONE_ROW_TAKE = """
WITH take AS (
    UPDATE inventory_stocklevel SET allocated = allocated + %(units)s
    WHERE id = %(level)s AND allocated <= on_hand - %(units)s
    RETURNING id
), line AS (
    INSERT INTO orders_orderline (order_id, product_id, quantity, allocated, shipped, backordered, cancelled)
    SELECT %(order)s, %(product)s, %(units)s, %(units)s, 0, 0, 0 FROM take
    RETURNING id
)
INSERT INTO orders_allocation (line_id, stock_level_id, quantity)
SELECT line.id, %(level)s, %(units)s FROM line
RETURNING line_id
"""


def _take_one_row(order: SalesOrder, plans: list[_LinePlan]) -> OrderLine | bool | None:
    """On PostgreSQL, place a one-line order allocated whole from one stock row in one statement: the line it
    wrote (in memory, with its product and no backorder) if it stuck, False if a concurrent order overtook the
    plan (nothing written). None: not such an order."""
    if connection.vendor != "postgresql" or len(plans) != 1 or len(plans[0].takes) != 1 or plans[0].backordered:
        return None
    [(level, units)] = plans[0].takes
    params = {"units": units, "level": level.pk, "order": order.pk, "product": plans[0].product.pk}
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT backorders_one_row_take")
        cursor.execute(_ONE_ROW_TAKE, params)
        row = cursor.fetchone()
        if row is not None:
            return _line_written(row[0], order=order, product=plans[0].product, units=units)
        cursor.execute("ROLLBACK TO SAVEPOINT backorders_one_row_take")
        return False


def _line_written(pk: int, *, order: SalesOrder, product: Product, units: int) -> OrderLine:
    """The line _ONE_ROW_TAKE inserted, as the database now holds it (allocated whole, nothing waiting)."""
    line = OrderLine(
        pk=pk, order=order, product=product, quantity=units, allocated=units, shipped=0, backordered=0, cancelled=0
    )
    line._state.adding, line._state.db = False, connection.alias
    OrderLine._meta.get_field("backorder").set_cached_value(line, None)
    return line


def _take_stock(plans: list[_LinePlan]) -> None:
    deltas: dict[int, dict[str, int]] = defaultdict(lambda: {"allocated": 0})
    for plan in plans:
        for level, units in plan.takes:
            deltas[level.pk]["allocated"] += units
    bulk_add(StockLevel, deltas)


def _order_status(plans: list[_LinePlan]) -> str:
    allocated = sum(p.allocated for p in plans)
    backordered = sum(p.backordered for p in plans)
    return status_for(
        allocated=allocated, shipped=0, backordered=backordered, cancelled=0, quantity=allocated + backordered
    )


# A new customer is inserted and an existing one read in one statement: the INSERT's RETURNING gives the new row,
# the SELECT (same snapshot, so it cannot see that row) the existing one.
_CUSTOMER_UPSERT = """
WITH new AS (
    INSERT INTO orders_customer (email, name, tier, created_at) VALUES (%(email)s, %(name)s, %(tier)s, %(now)s)
    ON CONFLICT (email) DO NOTHING
    RETURNING id, email, name, tier, created_at
)
SELECT id, email, name, tier, created_at FROM new
UNION ALL
SELECT id, email, name, tier, created_at FROM orders_customer WHERE email = %(email)s
LIMIT 1
"""


def _customer_upsert(request: CustomerRequest) -> Customer:
    """The customer with this email (created if new; a given tier is applied). One statement on PostgreSQL
    whether new or returning; elsewhere a read, and an INSERT that tolerates a concurrent twin."""
    email = request.email.strip().lower()
    name = request.name.strip() or email
    customer = None
    if connection.vendor == "postgresql":
        params = {"email": email, "name": name, "tier": request.tier or Customer.Tier.STANDARD, "now": timezone.now()}
        customer = next(iter(Customer.objects.raw(_CUSTOMER_UPSERT, params)), None)
        # None: a concurrent order inserted this email after the statement's snapshot; it is committed now.
    else:
        customer = Customer.objects.filter(email=email).first()
        if customer is None:
            customer = Customer(email=email, name=name, tier=request.tier or Customer.Tier.STANDARD)
            if insert_unless_conflict(customer, conflict_fields=["email"]):
                return customer
            customer = None
    if customer is None:
        customer = Customer.objects.get(email=email)
    if request.tier and customer.tier != request.tier:
        customer.tier = request.tier
        customer.save(update_fields=["tier"])
    return customer


# A generated number is the date and 24 random bits: a busy day draws a taken one now and then (at 10,000 orders
# a day, about three times), so an insert that meets a taken number draws another.
NUMBER_ATTEMPTS = 8


def new_order_number() -> str:
    return f"SO-{timezone.now():%y%m%d}-{secrets.token_hex(3).upper()}"


def _insert_order(order: SalesOrder, *, given: bool) -> None:
    """INSERT the order under its number; a given number that is taken is the caller's mistake (said so, nothing
    written), a generated one is drawn again."""
    for _ in range(1 if given else NUMBER_ATTEMPTS):
        if insert_unless_conflict(order, conflict_fields=["number"]):
            return
        if given:
            raise DuplicateOrderNumber(
                f"An order numbered {order.number} already exists. Use another number, or omit it to get one.",
                fields={"number": ["An order with this number already exists."]},
            )
        order.number = new_order_number()
    raise DuplicateOrderNumber(f"No free order number after {NUMBER_ATTEMPTS} draws; try again.")


@transaction.atomic
def order_place(
    *,
    customer: CustomerRequest,
    lines: Sequence[LineRequest],
    ship_complete: bool = False,
    number: str | None = None,
    ship_by: date | None = None,
    credit_applied: bool = False,
    cash_on_delivery: bool = False,
    delivery_essential: bool = False,
    placed_at: datetime | None = None,
    acting_user: AbstractBaseUser | None = None,
) -> SalesOrder:
    """Place an order atomically: allocate what is available, backorder the shortfall where allowed.

    Allocation per line takes from active warehouses by priority (lower number first), then most
    available, splitting across warehouses as needed. If any SKU is short and cannot be backordered
    (backorders denied or discontinued), the whole order is rejected with one InsufficientStock naming
    every short SKU, and nothing is written.

    Lock window: the plan is made from an unlocked read and everything is written first; the stock
    rows are locked only at the end (_take_one_row: the usual one-line order from one stock row is one
    statement, guarded UPDATE first; _confirm: pk-order locks and a check otherwise), so a hot SKU's row is
    held from that UPDATE to the commit. An order that backorders writes its lines and its email, and reads
    the policy and the webhook subscribers, before it locks; under the locks it reads its queues' tails (in
    the locks' round trip) and writes its lines' ETAs (one statement), then commits. If a concurrent order
    overtook the plan, nothing of it stays (the one statement writes nothing, the general path rolls back to
    a savepoint) and the lines are redone from a locked read. Queries do not grow with the number of
    warehouses.
    """
    levels = stock_levels_for_skus(skus=[line.sku for line in lines])
    products = products_for_lines(lines, what="order", known={level.product.sku: level.product for level in levels})
    placed_at = placed_at or timezone.now()
    if ship_by is not None and ship_by < timezone.localdate(placed_at):
        raise InvalidInput(
            "The promised ship-by date is before the order date.", fields={"ship_by": ["Must not be in the past."]}
        )
    product_ids = [p.pk for p in products.values()]
    plans = _plan(lines, products, levels)
    order = SalesOrder(
        number=number or new_order_number(),
        customer=_customer_upsert(customer),
        placed_at=placed_at,
        status=_order_status(plans),
        ship_complete=ship_complete,
        ship_by=ship_by,
        credit_applied=credit_applied,
        cash_on_delivery=cash_on_delivery,
        delivery_essential=delivery_essential,
        created_by=acting(acting_user),
    )
    _insert_order(order, given=bool(number))

    waiting = _waiting_prepare(plans) if any(p.backordered for p in plans) and not _shortages(plans) else None
    placed = False
    new_lines: list[NewLine] = []
    tails = None
    taken = None
    if not _shortages(plans):
        taken = _take_one_row(order, plans)
        placed = bool(taken) if taken is not None else None
        if placed is None:  # the general case: write, then confirm under lock; a stale plan rolls back
            confirmed = _write_then_confirm(order, plans, product_ids, waiting)
            placed = confirmed is not None
            if confirmed is not None:
                new_lines, tails = confirmed
    if not placed:
        plans = _plan(lines, products, stock_levels_lock(product_ids=product_ids))
        shortages = _shortages(plans)
        if shortages:
            raise InsufficientStock(shortages)
        new_lines, tails = _write_plan(order, plans), None
        _take_stock(plans)
    if new_lines:  # the products are locked (by _confirm or the locked retry)
        waiting = waiting or _waiting_prepare(plans)  # (a plan that first allocated everything: read under lock)
        peg_placed_locked(new_lines=new_lines, pegging=waiting.pegging, tails=tails)
        backorders_emit(
            event_type=Event.BACKORDER_CREATED,
            backorder_ids=[line.pk for line in new_lines],
            endpoints=waiting.endpoints,
        )
    status = _order_status(plans)
    if status != order.status:
        SalesOrder.objects.filter(pk=order.pk).update(status=status)
        order.status = status
    if isinstance(taken, OrderLine):  # the caller gets the one-statement order with its line, no read back
        order_lines_attach(order=order, lines=[taken])
    return order
