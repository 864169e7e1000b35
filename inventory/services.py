"""Inventory writes: stock levels and the ledger. Callers that must refill backorders after stock
arrives use the workflows in backorders.services, which call these."""

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F

from .dbutils import Statement, bulk_insert_statement
from .exceptions import InvalidInput, NegativeStock, StockAllocated
from .models import Product, StockLevel, StockMovement, Warehouse
from .selectors import products_lock


def stock_level_get_or_create(*, product: Product, warehouse: Warehouse) -> StockLevel:
    """The stock row for (product, warehouse), created empty if missing (safe under races: unique constraint)."""
    level, _ = StockLevel.objects.get_or_create(product=product, warehouse=warehouse)
    return level


@transaction.atomic
def stock_adjust(
    *,
    product: Product,
    warehouse: Warehouse,
    delta: int,
    reason: str,
    acting_user: AbstractBaseUser | None = None,
    source: str = "",
    movement_type: str = StockMovement.Type.ADJUSTMENT,
) -> StockMovement:
    """Change on_hand by `delta` (signed) and write the ledger row. on_hand may not drop below allocated."""
    if not isinstance(delta, int) or isinstance(delta, bool) or delta == 0:
        raise InvalidInput("The change must be a non-zero whole number of units.", fields={"delta": ["Must not be 0."]})
    reason = _reason(reason)
    level_id = stock_level_get_or_create(product=product, warehouse=warehouse).pk
    products_lock(product_ids=[product.pk])
    level = StockLevel.objects.select_for_update(of=("self",)).get(pk=level_id)
    if level.on_hand + delta < 0:
        raise NegativeStock(
            f"Cannot change {product.sku} at {warehouse.code} by {delta:+d}: only {level.on_hand} on hand, "
            "and on hand cannot go below 0. Check the count and adjust by at most what is there.",
            sku=product.sku,
            warehouse=warehouse.code,
            on_hand=level.on_hand,
        )
    if level.on_hand + delta < level.allocated:
        raise StockAllocated(
            sku=product.sku, warehouse=warehouse.code, on_hand=level.on_hand, allocated=level.allocated, delta=delta
        )
    StockLevel.objects.filter(pk=level.pk).update(on_hand=F("on_hand") + delta)
    return StockMovement.objects.create(
        stock_level=level,
        movement_type=movement_type,
        quantity=delta,
        reason=reason,
        user=_ledger_user(acting_user),
        source=source,
    )


def _reason(reason: str) -> str:
    """A stock change's reason for the ledger (trimmed); refused when blank."""
    if not reason or not reason.strip():
        raise InvalidInput("Give a reason for the stock change.", fields={"reason": ["This field is required."]})
    return reason.strip()


def _ledger_user(acting_user: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return acting_user if acting_user is not None and acting_user.is_authenticated else None


def stock_receive_locked(
    *,
    units: Mapping[int, int],
    levels: Mapping[int, StockLevel],
    reason: str,
    source: str,
    acting_user: AbstractBaseUser | None = None,
) -> Statement | None:
    """Receive units on stock rows the caller locked (stock_levels_lock, inside its transaction): `units`
    {stock level pk: units > 0}, `levels` those rows by pk. What stock_adjust does for a positive change, without
    locking again, for a caller that writes in bulk: the rows' in-memory on_hand counts the units at once, the
    caller adds the same units to on_hand in its own stock UPDATE (one row cannot be updated twice in one
    statement), and runs the returned statement — the ledger rows (type receipt), one INSERT however many rows —
    with its other writes (dbutils.run_together) in the same transaction."""
    if any(not isinstance(n, int) or isinstance(n, bool) or n <= 0 for n in units.values()):
        raise InvalidInput("Received units must be whole numbers of at least 1.", fields={"units": ["Must be >= 1."]})
    reason = _reason(reason)
    for pk, n in units.items():
        levels[pk].on_hand += n
    user = _ledger_user(acting_user)
    return bulk_insert_statement(
        StockMovement,
        [
            StockMovement(
                stock_level=levels[pk],
                movement_type=StockMovement.Type.RECEIPT,
                quantity=n,
                reason=reason,
                user=user,
                source=source,
            )
            for pk, n in sorted(units.items())
        ],
    )
