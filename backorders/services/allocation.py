"""Allocating stock to waiting lines: the queue fill and the per-order "Allocate stock" action.

Both lock the product's stock rows (pk order), plan in Python from that one locked read, and write
with a constant number of set-based statements however many lines are filled.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from inventory.dbutils import Statement, bulk_add_statement, bulk_upsert_add_statement, run_together
from inventory.models import StockLevel
from inventory.selectors import plan_take, stock_levels_lock
from orders.models import Allocation, OrderLine, SalesOrder
from orders.services import orders_refresh_status_statement

from ..models import Backorder
from ..policies import FillStrategy, fill_strategy
from ..selectors import QueuedLine, backorder_fill_head
from .eta import etas_recompute
from .notices import FilledRecipient, notify_filled_events, notify_filled_statement


@dataclass(frozen=True, slots=True)
class FillEntry:
    """One waiting line served by a fill: who, and how much of what it waited for."""

    backorder_id: int
    order_number: str
    customer_email: str
    product_id: int
    units: int
    waiting_before: int

    @property
    def still_waiting(self) -> int:
        return self.waiting_before - self.units


@dataclass
class FillResult:
    lines_filled: int = 0
    lines_partly_filled: int = 0
    units: int = 0
    filled_backorder_ids: list[int] = field(default_factory=list)
    entries: list[FillEntry] = field(default_factory=list)
    # When asked (backorders_fill_locked's `preview`): per product the fill served, the first lines still waiting
    # after it, in queue order, with what they still wait for.
    waiting_after: dict[int, list[QueuedLine]] = field(default_factory=dict)

    def merge(self, other: "FillResult") -> None:
        self.lines_filled += other.lines_filled
        self.lines_partly_filled += other.lines_partly_filled
        self.units += other.units
        self.filled_backorder_ids += other.filled_backorder_ids
        self.entries += other.entries
        self.waiting_after.update(other.waiting_after)

    def summary(self) -> str:
        if not self.units:
            return "no waiting lines filled"
        partly = f", {self.lines_partly_filled} partly" if self.lines_partly_filled else ""
        return f"{self.lines_filled} waiting line(s) filled{partly} ({self.units} units)"


@dataclass(frozen=True, slots=True)
class _Take:
    line: QueuedLine
    from_levels: list[tuple[StockLevel, int]]
    units: int = field(init=False)  # summed once: a fill reads it several times per line

    def __post_init__(self) -> None:
        object.__setattr__(self, "units", sum(units for _, units in self.from_levels))


def _take_in_memory(levels: list[StockLevel], units: int) -> list[tuple[StockLevel, int]]:
    plan = plan_take(levels, units)
    for level, take in plan:
        level.allocated += take  # the in-memory copy only, so the next take sees what is left
    return plan


def _write_takes(
    takes: list[_Take],
    *,
    recompute_etas: bool = True,
    on_hand: dict[int, int] | None = None,
    along: list[Statement | None] | None = None,
) -> FillResult:
    """Apply planned takes in one set-based statement however many lines: allocations (upsert, adding to a line's
    existing allocation), stock, lines, backorders (closed when nothing waits), the orders' status and the filled
    lines' emails (notify_filled_statement, unrendered); then the backorder.filled events (one read of the webhook
    endpoints, more only when one wants them). `on_hand`: units received on stock rows whose on_hand the caller
    has not written yet; written here, in the same UPDATE as the allocations (and emptied), when there is something
    to take. `along`: the caller's other pending writes (of other rows), run in the same statement (and emptied)."""
    takes = [t for t in takes if t.units > 0]
    result = FillResult()
    if not takes:
        return result
    wanted: dict[tuple[int, int], int] = defaultdict(int)
    level_deltas: dict[int, dict[str, int]] = defaultdict(lambda: {"allocated": 0})
    for take in takes:
        for level, units in take.from_levels:
            wanted[(take.line.line_id, level.pk)] += units
            level_deltas[level.pk]["allocated"] += units
    if on_hand:
        for pk, units in on_hand.items():
            level_deltas[pk]["on_hand"] = units
        on_hand.clear()
    pending = list(along or [])
    if along:
        along.clear()
    line_deltas = {t.line.line_id: {"allocated": t.units, "backordered": -t.units} for t in takes}
    filled = [t.line.backorder_id for t in takes if t.units == t.line.quantity]
    run_together(
        *pending,
        bulk_upsert_add_statement(Allocation, keys=("line", "stock_level"), counter="quantity", rows=wanted),
        bulk_add_statement(StockLevel, level_deltas),
        bulk_add_statement(OrderLine, line_deltas),
        bulk_add_statement(
            Backorder,
            {t.line.backorder_id: {"quantity": -t.units} for t in takes},
            exhausted=("quantity", {"status": Backorder.Status.FILLED, "closed_at": timezone.now()}),
        ),
        # After the lines' statement: it reads them as written (the deltas on PostgreSQL, the rows elsewhere).
        orders_refresh_status_statement(order_ids={t.line.order_id for t in takes}, line_deltas=line_deltas),
        notify_filled_statement(
            backorder_ids=filled,
            recipients={
                t.line.backorder_id: FilledRecipient(
                    t.line.customer_id, t.line.customer_email, t.line.order_id, t.line.line_id
                )
                for t in takes
            },
        ),
    )
    result.lines_filled = len(filled)
    result.lines_partly_filled = len(takes) - len(filled)
    result.units = sum(t.units for t in takes)
    result.filled_backorder_ids = filled
    result.entries = [
        FillEntry(
            backorder_id=t.line.backorder_id,
            order_number=t.line.order_number,
            customer_email=t.line.customer_email,
            product_id=t.line.product_id,
            units=t.units,
            waiting_before=t.line.quantity,
        )
        for t in takes
    ]
    if recompute_etas:
        etas_recompute(product_ids={t.line.product_id for t in takes})
    notify_filled_events(backorder_ids=filled)
    return result


# A fill reads and writes the queue head this many lines at a time, so its memory does not grow with the
# receipt (a receipt covering 100,000 lines is ten rounds of the same constant number of statements).
FILL_CHUNK_LINES = 10_000


def _fill_product_locked(
    *,
    product_id: int,
    levels: list[StockLevel],
    strategy: FillStrategy,
    on_hand: dict[int, int] | None = None,
    along: list[Statement | None] | None = None,
    preview: int = 0,
) -> FillResult:
    """Serve the product's queue head from `levels` (locked), FILL_CHUNK_LINES lines a round: each round reads
    the next lines of the head (the ones filled before are no longer waiting) and writes them; a line is
    never split across rounds (it takes what it can of what is left). The caller re-pegs. `preview`: also note
    the first lines still waiting afterwards (read with the last round's head, so no query of its own), unless
    there was nothing to take."""
    result = FillResult()
    while (available := sum(level.available for level in levels)) > 0:
        head, after = backorder_fill_head(
            product_id=product_id, strategy=strategy, units=available, limit=FILL_CHUNK_LINES, beyond=preview
        )
        takes = [_Take(line, _take_in_memory(levels, line.quantity)) for line in head]
        result.merge(_write_takes(takes, recompute_etas=False, on_hand=on_hand, along=along))
        if preview:
            partly = [replace(t.line, quantity=t.line.quantity - t.units) for t in takes if t.units < t.line.quantity]
            result.waiting_after[product_id] = (partly + after)[:preview]
        if len(head) < FILL_CHUNK_LINES:
            break
    return result


def backorders_fill_locked(
    *,
    levels_by_product: Mapping[int, list[StockLevel]],
    product_ids: Iterable[int],
    strategy: FillStrategy,
    on_hand: Mapping[int, int] | None = None,
    along: Sequence[Statement | None] = (),
    preview: int = 0,
) -> FillResult:
    """backorders_fill's work for a caller that holds the products' locks and their stock rows (`levels_by_product`:
    the locked rows of active warehouses, as stock_levels_lock returns them, per product). Does not re-peg.

    `on_hand`: {stock level pk: units} the caller put on hand in memory (the rows' on_hand already counts them)
    but not yet in the database (a receipt): written with the fill's first stock UPDATE, or alone if nothing
    is taken — one row cannot be updated twice in one statement, so they go together. `along`: the caller's other
    writes (of rows the fill does not write), run in the fill's first statement, or alone at the end. `preview`:
    note in the result's waiting_after the first `preview` lines still waiting of each product it takes stock for
    (those it reads anyway)."""
    pending = dict(on_hand or {})
    pending_writes = list(along)
    result = FillResult()
    for product_id in sorted(set(product_ids)):
        result.merge(
            _fill_product_locked(
                product_id=product_id,
                levels=levels_by_product.get(product_id, []),
                strategy=strategy,
                on_hand=pending,
                along=pending_writes,
                preview=preview,
            )
        )
    run_together(*pending_writes, bulk_add_statement(StockLevel, {pk: {"on_hand": n} for pk, n in pending.items()}))
    return result


@transaction.atomic
def backorders_fill(
    *, product_ids: Iterable[int], strategy: FillStrategy | None = None, recompute_etas: bool = True
) -> FillResult:
    """Serve each product's waiting lines from its available stock, in queue order; partial fills allowed.

    Queue order: pinned priority (higher first), then the fill strategy (fifo: placed time; tier:
    customer tier then placed time), then line id. Per product: one locked read of its stock rows, one
    ordered read of the head of its queue (only the lines the stock reaches), then bulk writes.
    A ship_complete order keeps a partial fill and ships once complete. The remaining lines' ETAs are
    re-pegged unless `recompute_etas=False` (a caller that re-pegs these products itself right after).
    """
    strategy = strategy or fill_strategy()
    product_ids = sorted(set(product_ids))
    levels_by_product: dict[int, list[StockLevel]] = defaultdict(list)
    for level in stock_levels_lock(product_ids=product_ids):
        levels_by_product[level.product_id].append(level)
    result = backorders_fill_locked(levels_by_product=levels_by_product, product_ids=product_ids, strategy=strategy)
    filled_products = sorted({entry.product_id for entry in result.entries})
    if recompute_etas and filled_products:
        etas_recompute(product_ids=filled_products)  # one statement for all of them
    return result


@transaction.atomic
def order_allocate_waiting(*, order: SalesOrder, acting_user: AbstractBaseUser | None = None) -> FillResult:
    """Allocate available stock to this order's waiting lines (the admin's "Allocate stock").

    Staff use it to serve one order directly, e.g. after stock was counted in without a fill.
    """
    waiting = list(order.lines.filter(backordered__gt=0).values_list("product_id", flat=True))
    if not waiting:
        return FillResult()
    levels_by_product: dict[int, list[StockLevel]] = defaultdict(list)
    for level in stock_levels_lock(product_ids=waiting):
        levels_by_product[level.product_id].append(level)
    backorders = list(
        Backorder.objects.filter(line__order=order, status=Backorder.Status.WAITING)
        .select_related("line__order__customer")
        .select_for_update(of=("self",))
        .order_by("pk")
    )
    takes = [
        _Take(
            QueuedLine(
                b.pk,
                b.line_id,
                order.pk,
                b.product_id,
                b.quantity,
                order.number,
                b.line.order.customer.email,
                b.line.order.customer_id,
            ),
            _take_in_memory(levels_by_product[b.product_id], b.quantity),
        )
        for b in backorders
    ]
    return _write_takes(takes)
