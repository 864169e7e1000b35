"""ETA recompute and manual edits. The pegging rule is in backorders.pegging; a manual ETA wins
until cleared but still takes its place in the queue."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import QuerySet, Sum
from django.utils import timezone

from inventory.dbutils import Read, bulk_set, reads_in_one_trip
from inventory.exceptions import InvalidInput
from inventory.models import Product
from inventory.selectors import products_lock

from ..exceptions import EtaPermissionDenied
from ..models import Backorder, BackorderPolicy, EtaChange
from ..pegging import Peg, Source, Supply, open_supply, open_supply_rows, peg, supply_from_rows
from ..policies import FillStrategy, fill_strategy
from ..repeg import LEAD_TIME_REASON, NO_RESTOCK_REASON, PEGGED_REASON, Received, repeg, repeg_after_receipt
from ..selectors import backorder_fill_queue, lead_time_eta, waiting_product_batches
from .notices import notify_eta_changes


def _reason(p: Peg) -> str:
    if p.source == Source.PURCHASE_ORDER:
        return f"{PEGGED_REASON}{p.label}"
    if p.source == Source.LEAD_TIME:
        return LEAD_TIME_REASON
    return NO_RESTOCK_REASON


@transaction.atomic
def etas_recompute(
    *, product_ids: Iterable[int], as_of: date | None = None, strategy: FillStrategy | None = None
) -> int:
    """Re-peg every waiting line of these products; write only the changes, each with an EtaChange row.

    On PostgreSQL one set-based statement does it all (backorders.repeg): queue positions and PO coverage as
    running sums, the changed lines updated and their EtaChange rows inserted, whatever the number of
    products or lines. Elsewhere: per product one ordered read of its queue and the walk in Python
    (backorders.pegging.peg), then one UPDATE and one INSERT. Returns the number of lines changed.
    """
    product_ids = sorted(set(product_ids))
    if not product_ids:
        return 0
    products_lock(product_ids=product_ids)
    today = as_of or timezone.localdate()
    policy = BackorderPolicy.current()
    strategy = strategy or fill_strategy(policy.fill_strategy)
    if connection.vendor == "postgresql":
        changes = repeg(product_ids=product_ids, today=today, handling_days=policy.handling_days, strategy=strategy)
    else:
        changes = _repeg_in_python(product_ids=product_ids, today=today, policy=policy, strategy=strategy)
    notify_eta_changes(changes=changes)
    return len(changes)


def etas_recompute_after_receipt(
    *,
    received: Mapping[int, Received | None],
    policy: BackorderPolicy,
    strategy: FillStrategy,
    as_of: date | None = None,
) -> int:
    """Re-peg the products a receipt filled from, inside the receipt's transaction (which holds their locks); returns
    how many lines' ETAs changed. `received`: per product, the PO line whose units the fill served exactly, or
    None when the fill served other units than the receipt brought (then the whole queue re-pegs).

    The same ETAs as etas_recompute, reading only the head of each queue the receipt can have moved (see
    backorders.repeg.repeg_after_receipt): one statement. Elsewhere than PostgreSQL the whole queue is walked."""
    if not received:
        return 0
    today = as_of or timezone.localdate()
    if connection.vendor == "postgresql":
        changes = repeg_after_receipt(
            received=received, today=today, handling_days=policy.handling_days, strategy=strategy
        )
    else:
        changes = _repeg_in_python(product_ids=sorted(received), today=today, policy=policy, strategy=strategy)
    notify_eta_changes(changes=changes)
    return len(changes)


@dataclass(frozen=True, slots=True)
class NewLine:
    """A backorder just written by a placement, as much as pegging it needs."""

    pk: int
    product_id: int
    quantity: int
    eta: date | None = None
    eta_source: str = ""


@dataclass(frozen=True)
class PlacedPegging:
    """What pegging an order's new lines needs that no product lock guards, read before the order takes its locks:
    the day, the policy's fill strategy and handling days, and each product's lead-time ETA."""

    today: date
    strategy: FillStrategy
    handling_days: int
    lead_etas: Mapping[int, date | None]
    restockable: Mapping[int, bool]


def placed_pegging(*, products: Iterable[Product], as_of: date | None = None) -> PlacedPegging:
    """PlacedPegging for lines of these products (their suppliers are read if a lead time comes from one)."""
    today = as_of or timezone.localdate()
    policy = BackorderPolicy.current()
    products = list(products)
    return PlacedPegging(
        today=today,
        strategy=fill_strategy(policy.fill_strategy),
        handling_days=policy.handling_days,
        lead_etas={p.pk: lead_time_eta(product=p, as_of=today, handling_days=policy.handling_days) for p in products},
        restockable={p.pk: not p.discontinued for p in products},
    )


def peg_placed_locked(
    *, new_lines: Sequence[NewLine], pegging: PlacedPegging, tails: Mapping[int, "QueueTail"] | None = None
) -> int:
    """ETAs for the lines an order just put in the queue (order placement, inside its transaction, holding these
    products' locks); returns how many lines' ETAs were set or changed. `pegging`: read before the locks;
    `tails`: the products' queue_tails, if the caller read them under the locks (queue_tails_read).

    The common case — one new line of a product that joins the end of its queue — changes no one else's ETA
    (every line ahead keeps its position and the supply is the same), so only that line is pegged: its
    position is the queue's waiting units, the walk is backorders.pegging.peg over [units ahead, its own],
    exactly what a full re-peg would give it. One read whatever the queue's length (queue_tails), where a
    re-peg reads the whole queue, and one write. Anything else (a line that sorts ahead of waiting ones: a
    pinned priority, a VIP under the tier strategy, a back-dated order) re-pegs the product. No email or event
    comes of a brand-new line's first ETA (it is part of backorder_created), so notify_eta_changes is not asked.
    """
    by_product: dict[int, list[NewLine]] = {}
    for line in new_lines:
        by_product.setdefault(line.product_id, []).append(line)
    if not by_product:
        return 0
    today = pegging.today
    if tails is None:
        tails = queue_tails(product_ids=sorted(by_product), strategy=pegging.strategy, as_of=today)
    repeg_ids = [
        product_id
        for product_id, rows in by_product.items()
        if len(rows) != 1 or tails[product_id].last_id != rows[0].pk
    ]
    changed = etas_recompute(product_ids=repeg_ids, as_of=today, strategy=pegging.strategy) if repeg_ids else 0
    changes: list[EtaChange] = []
    for product_id, rows in by_product.items():
        if product_id in repeg_ids:
            continue
        [line], tail = rows, tails[product_id]
        ahead = tail.waiting_units - line.quantity
        new = peg(
            [ahead, line.quantity] if ahead else [line.quantity],
            tail.supply,
            lead_eta=pegging.lead_etas[product_id],
            handling_days=pegging.handling_days,
            restockable=pegging.restockable[product_id],
        )[-1]
        if (line.eta, line.eta_source) != (new.eta, new.source):
            changes.append(
                EtaChange(
                    backorder_id=line.pk, old_eta=line.eta, new_eta=new.eta, old_source=line.eta_source,
                    new_source=new.source, reason=_reason(new),
                )
            )  # fmt: skip
    _etas_set(changes)
    return changed + len(changes)


# The lines' new ETAs and their EtaChange rows in one statement of fixed text (written under the products' locks).
_ETAS_SET = """
WITH v AS (
    SELECT * FROM unnest(%s::bigint[], %s::date[], %s::date[], %s::text[], %s::text[], %s::text[])
        AS v(id, old_eta, new_eta, old_source, new_source, reason)
), updated AS (
    UPDATE backorders_backorder AS b SET eta = v.new_eta, eta_source = v.new_source FROM v WHERE b.id = v.id
)
INSERT INTO backorders_etachange (backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at)
SELECT id, old_eta, new_eta, old_source, new_source, reason, %s FROM v
"""


def _etas_set(changes: Sequence[EtaChange]) -> None:
    """Apply new ETAs (EtaChange rows, unsaved: what each line's ETA was and becomes) and record the changes."""
    if not changes:
        return
    if connection.vendor != "postgresql":
        bulk_set(Backorder, {c.backorder_id: {"eta": c.new_eta, "eta_source": c.new_source} for c in changes})
        EtaChange.objects.bulk_create(changes)
        return
    columns = ("backorder_id", "old_eta", "new_eta", "old_source", "new_source", "reason")
    with connection.cursor() as cursor:
        cursor.execute(_ETAS_SET, [*([getattr(c, f) for c in changes] for f in columns), timezone.now()])


@dataclass(frozen=True)
class QueueTail:
    last_id: int | None  # the line the queue serves last
    waiting_units: int
    supply: list[Supply]


def queue_tails(*, product_ids: list[int], strategy: FillStrategy, as_of: date) -> dict[int, QueueTail]:
    """Per product: its queue's last line, the units waiting in it, and its open supply. On PostgreSQL one
    statement compiled once per strategy (queue_tails_read: the lock window pays no ORM build); elsewhere three
    queries."""
    if connection.vendor == "postgresql":
        return queue_tails_from_rows(reads_in_one_trip(queue_tails_read(product_ids, strategy))[0], as_of=as_of)
    supply = open_supply(product_ids=product_ids, as_of=as_of)
    waiting = dict(_waiting_units(product_id__in=product_ids).values_list("product_id", "units"))
    return {
        product_id: QueueTail(
            backorder_fill_queue(product_id=product_id, strategy=strategy)
            .reverse()
            .values_list("pk", flat=True)
            .first(),
            waiting.get(product_id, 0),
            supply.get(product_id, []),
        )
        for product_id in product_ids
    }


def queue_tails_read(product_ids: Sequence[int], strategy: FillStrategy) -> Read:
    """PostgreSQL: queue_tails's statement, for a caller that sends it with other reads in one round trip (a
    placement sends it with its locks'); queue_tails_from_rows makes its rows QueueTails."""
    sql, template = _queue_tail_sql(type(strategy))
    return Read(
        " UNION ALL ".join([sql] * len(product_ids)),
        [p for product_id in product_ids for p in _with_product(template, product_id)],
    )


def queue_tails_from_rows(rows: Iterable[tuple], *, as_of: date) -> dict[int, QueueTail]:
    return {
        product_id: QueueTail(
            last_id,
            units or 0,
            supply_from_rows(
                ((product_id, date.fromisoformat(a), q, r, n) for a, q, r, n in supply or []), as_of=as_of
            ).get(product_id, []),
        )
        for product_id, last_id, units, supply in rows
    }


def _waiting_units(**filters: object) -> QuerySet:
    return (
        Backorder.objects.filter(status=Backorder.Status.WAITING, **filters)
        .values("product_id")
        .annotate(units=Sum("quantity"))
    )


# The product a compiled _queue_tail_sql is for: a value no product id takes, replaced in its parameters.
_ANY_PRODUCT = -7_000_000_001


@lru_cache(maxsize=8)
def _queue_tail_sql(strategy: type[FillStrategy]) -> tuple[str, tuple]:
    """queue_tails's statement for one product (parameters with _ANY_PRODUCT for its id): the same querysets
    the ORM path runs, as scalar subqueries of one SELECT."""
    last, last_params = (
        backorder_fill_queue(product_id=_ANY_PRODUCT, strategy=strategy())
        .reverse()
        .values_list("pk")[:1]
        .query.sql_with_params()
    )
    units, units_params = _waiting_units(product_id=_ANY_PRODUCT).values("units").query.sql_with_params()
    supply, supply_params = (
        open_supply_rows(product_id=_ANY_PRODUCT)
        .values_list("arrival", "quantity", "received", "purchase_order__number", "id")
        .query.sql_with_params()
    )
    sql = (
        f"SELECT %s::bigint, ({last}), ({units}), "
        "(SELECT json_agg(json_build_array(s.arrival, s.quantity, s.received, s.purchase_order__number) "
        f"ORDER BY s.arrival, s.id) FROM ({supply}) s)"
    )
    return sql, (_ANY_PRODUCT, *last_params, *units_params, *supply_params)


def _with_product(params: tuple, product_id: int) -> list[object]:
    return [product_id if p == _ANY_PRODUCT else p for p in params]


def _repeg_in_python(
    *, product_ids: list[int], today: date, policy: BackorderPolicy, strategy: FillStrategy
) -> list[EtaChange]:
    products = Product.objects.select_related("supplier").in_bulk(product_ids)
    supply = open_supply(product_ids=product_ids, as_of=today)
    updates: dict[int, dict[str, object]] = {}
    changes: list[EtaChange] = []
    for product_id in product_ids:
        product = products.get(product_id)
        if product is None:
            continue
        queue = list(
            backorder_fill_queue(product_id=product_id, strategy=strategy).values_list(
                "id", "quantity", "eta", "eta_source"
            )
        )
        if not queue:
            continue
        pegs = peg(
            [quantity for _, quantity, _, _ in queue],
            supply.get(product_id, []),
            lead_eta=lead_time_eta(product=product, as_of=today, handling_days=policy.handling_days),
            handling_days=policy.handling_days,
            restockable=not product.discontinued,
        )
        for (backorder_id, _, eta, source), new in zip(queue, pegs, strict=True):
            if source == Source.MANUAL or (eta, source) == (new.eta, new.source):
                continue
            updates[backorder_id] = {"eta": new.eta, "eta_source": new.source}
            changes.append(
                EtaChange(
                    backorder_id=backorder_id,
                    old_eta=eta,
                    new_eta=new.eta,
                    old_source=source,
                    new_source=new.source,
                    reason=_reason(new),
                )
            )
    bulk_set(Backorder, updates)
    EtaChange.objects.bulk_create(changes, batch_size=5000)
    return changes


def etas_recompute_all(
    *,
    as_of: date | None = None,
    max_products: int = 200,
    max_lines: int = 20_000,
    progress: Callable[[int, int, int], None] | None = None,
) -> int:
    """Re-peg every product with waiting lines (the nightly job): one transaction per batch of products.

    Products go in ascending id (the global lock order) in batches of at most `max_products` products and
    `max_lines` waiting lines (a product with a longer queue is a batch of its own), so memory and lock
    time stay flat however many lines wait. `progress(products_done, products_total, lines_changed)`.
    """
    batches = waiting_product_batches(max_products=max_products, max_lines=max_lines)
    total = sum(len(batch) for batch in batches)
    done = changed = 0
    for batch in batches:
        changed += etas_recompute(product_ids=batch, as_of=as_of)
        done += len(batch)
        if progress is not None:
            progress(done, total, changed)
    return changed


@transaction.atomic
def backorder_set_eta(
    *, backorders: Iterable[Backorder], eta: date | None, reason: str, acting_user: AbstractBaseUser | None
) -> int:
    """Customer service sets a manual ETA (or clears it with eta=None, back to the computed one).

    A manual ETA wins over pegging until cleared. Needs backorders.change_backorder_eta. Only waiting
    lines change; returns how many did. Every change is kept as an EtaChange row with who and why.
    """
    if acting_user is not None and not acting_user.has_perm("backorders.change_backorder_eta"):
        raise EtaPermissionDenied(
            "You do not have permission to change ETAs. Ask a manager for the Customer service role."
        )
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput("Give a reason for the ETA change.", fields={"reason": ["This field is required."]})
    if len(reason) > 200:
        raise InvalidInput("Keep the reason under 200 characters.", fields={"reason": ["At most 200 characters."]})
    if eta is not None and eta < timezone.localdate():
        raise InvalidInput("The ETA cannot be in the past.", fields={"eta": ["Must be today or later."]})
    backorders = list(backorders)
    products_lock(product_ids={b.product_id for b in backorders})
    ids = sorted({b.pk for b in backorders})
    locked = list(
        Backorder.objects.filter(pk__in=ids, status=Backorder.Status.WAITING)
        .select_for_update(of=("self",))
        .order_by("pk")
    )
    user = acting_user if acting_user is not None and acting_user.is_authenticated else None
    if eta is None:
        manual = [b for b in locked if b.eta_source == Source.MANUAL]
        if not manual:
            return 0
        Backorder.objects.filter(pk__in=[b.pk for b in manual]).update(eta_source="", eta=None)
        cleared = EtaChange.objects.bulk_create(
            EtaChange(
                backorder=b,
                old_eta=b.eta,
                new_eta=None,
                old_source=Source.MANUAL,
                new_source="",
                reason=f"Manual ETA cleared: {reason}",
                user=user,
            )
            for b in manual
        )
        notify_eta_changes(changes=cleared)
        etas_recompute(product_ids={b.product_id for b in manual})
        return len(manual)
    changed = [b for b in locked if (b.eta, b.eta_source) != (eta, Source.MANUAL)]
    Backorder.objects.filter(pk__in=[b.pk for b in changed]).update(eta=eta, eta_source=Source.MANUAL)
    edits = EtaChange.objects.bulk_create(
        EtaChange(
            backorder=b,
            old_eta=b.eta,
            new_eta=eta,
            old_source=b.eta_source,
            new_source=Source.MANUAL,
            reason=reason,
            user=user,
        )
        for b in changed
    )
    notify_eta_changes(changes=edits)
    return len(changed)
