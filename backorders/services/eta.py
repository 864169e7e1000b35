"""ETA recompute and manual edits. The pegging rule is in backorders.pegging; a manual ETA wins
until cleared but still takes its place in the queue."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from inventory.dbutils import bulk_set
from inventory.exceptions import InvalidInput
from inventory.models import Product
from inventory.selectors import products_lock

from ..exceptions import EtaPermissionDenied
from ..models import Backorder, BackorderPolicy, EtaChange
from ..pegging import Peg, Source, open_supply, peg
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


def peg_placed_locked(
    *, new_lines: Sequence[NewLine], products: Mapping[int, Product] | None = None, as_of: date | None = None
) -> int:
    """ETAs for the lines an order just put in the queue (order placement, inside its transaction, holding these
    products' locks); returns how many lines' ETAs were set or changed. `products`: those the caller read.

    The common case — one new line of a product that joins the end of its queue — changes no one else's ETA
    (every line ahead keeps its position and the supply is the same), so only that line is pegged: its
    position is the queue's waiting units, the walk is backorders.pegging.peg over [units ahead, its own],
    exactly what a full re-peg would give it. That costs a few indexed reads whatever the queue's length,
    where a re-peg reads the whole queue. Anything else (a line that sorts ahead of waiting ones: a pinned
    priority, a VIP under the tier strategy, a back-dated order) re-pegs the product. No email or event comes
    of a brand-new line's first ETA (it is part of backorder_created), so notify_eta_changes is not asked.
    """
    by_product: dict[int, list[NewLine]] = {}
    for line in new_lines:
        by_product.setdefault(line.product_id, []).append(line)
    if not by_product:
        return 0
    today = as_of or timezone.localdate()
    policy = BackorderPolicy.current()
    strategy = fill_strategy(policy.fill_strategy)
    repeg_ids: list[int] = []
    tail_lines: dict[int, NewLine] = {}
    for product_id, rows in by_product.items():
        last = backorder_fill_queue(product_id=product_id, strategy=strategy).reverse().values_list("pk", flat=True)
        if len(rows) == 1 and last.first() == rows[0].pk:
            tail_lines[product_id] = rows[0]
        else:
            repeg_ids.append(product_id)
    changed = etas_recompute(product_ids=repeg_ids, as_of=today, strategy=strategy) if repeg_ids else 0
    if not tail_lines:
        return changed
    if products is None or any(products.get(product_id) is None for product_id in tail_lines):
        products = Product.objects.select_related("supplier").in_bulk(list(tail_lines))
    supply = open_supply(product_ids=list(tail_lines), as_of=today)
    waiting = dict(
        Backorder.objects.filter(product_id__in=list(tail_lines), status=Backorder.Status.WAITING)
        .values("product_id")
        .annotate(units=Sum("quantity"))
        .values_list("product_id", "units")
    )
    updates: dict[int, dict[str, object]] = {}
    changes: list[EtaChange] = []
    for product_id, line in tail_lines.items():
        product = products[product_id]
        ahead = waiting[product_id] - line.quantity
        new = peg(
            [ahead, line.quantity] if ahead else [line.quantity],
            supply.get(product_id, []),
            lead_eta=lead_time_eta(product=product, as_of=today, handling_days=policy.handling_days),
            handling_days=policy.handling_days,
            restockable=not product.discontinued,
        )[-1]
        if (line.eta, line.eta_source) == (new.eta, new.source):
            continue
        updates[line.pk] = {"eta": new.eta, "eta_source": new.source}
        changes.append(
            EtaChange(
                backorder_id=line.pk, old_eta=line.eta, new_eta=new.eta, old_source=line.eta_source,
                new_source=new.source, reason=_reason(new),
            )
        )  # fmt: skip
    bulk_set(Backorder, updates)
    EtaChange.objects.bulk_create(changes)
    return changed + len(changes)


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
