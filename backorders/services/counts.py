"""Stock counts: set on hand to what was counted, as an adjustment through the ledger (and refill the queue)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from inventory.models import Product, StockLevel, StockMovement, Warehouse
from inventory.selectors import products_lock

from .allocation import FillResult
from .stock import stock_adjust_and_fill

STOCK_COUNT_REASON = "Stock count import"


@transaction.atomic
def stock_count_record(
    *,
    product: Product,
    warehouse: Warehouse,
    counted: int,
    reason: str = STOCK_COUNT_REASON,
    acting_user: AbstractBaseUser | None = None,
    source: str = "import",
) -> tuple[StockMovement | None, FillResult]:
    """Make on hand equal `counted` with one adjustment (counted - on hand now) through stock_adjust_and_fill.

    The difference is read under the product's lock, so a receipt or shipment committed meanwhile is not
    lost. Nothing is written when the count matches (None, empty fill). Counting below what is allocated is
    refused (StockAllocated), like any adjustment.
    """
    products_lock(product_ids=[product.pk])
    on_hand = (
        StockLevel.objects.filter(product=product, warehouse=warehouse).values_list("on_hand", flat=True).first() or 0
    )
    delta = counted - on_hand
    if delta == 0:
        return None, FillResult()
    return stock_adjust_and_fill(
        product=product, warehouse=warehouse, delta=delta, reason=reason, acting_user=acting_user, source=source
    )
