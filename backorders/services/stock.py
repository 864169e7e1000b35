"""Stock changes that may free units for waiting lines."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from inventory.models import Product, StockMovement, Warehouse
from inventory.services import stock_adjust

from .allocation import FillResult, backorders_fill


@transaction.atomic
def stock_adjust_and_fill(
    *,
    product: Product,
    warehouse: Warehouse,
    delta: int,
    reason: str,
    acting_user: AbstractBaseUser | None = None,
    source: str = "",
) -> tuple[StockMovement, FillResult]:
    """Adjust on_hand with a reason (ledger row); a positive change then fills the product's queue."""
    movement = stock_adjust(
        product=product, warehouse=warehouse, delta=delta, reason=reason, acting_user=acting_user, source=source
    )
    fill = backorders_fill(product_ids=[product.pk]) if delta > 0 else FillResult()
    return movement, fill
