"""Inventory writes: stock levels and the ledger. Callers that must refill backorders after stock
arrives use the workflows in backorders.services, which call these."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F

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
    if not reason or not reason.strip():
        raise InvalidInput("Give a reason for the stock change.", fields={"reason": ["This field is required."]})
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
        reason=reason.strip(),
        user=acting_user if acting_user is not None and acting_user.is_authenticated else None,
        source=source,
    )
