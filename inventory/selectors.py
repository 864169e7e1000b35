from collections.abc import Iterable

from django.db.models import QuerySet, Sum, TextChoices

from .models import Product, StockLevel


def products_lock(*, product_ids: Iterable[int]) -> None:
    """Take the per-SKU mutex: the product rows, FOR NO KEY UPDATE, in pk order.

    Every write to a product's stock, queue or ETAs takes it first, so it also serialises products
    that have no stock rows yet. NO KEY: inserts of order lines referencing the product never wait.
    Global lock order: purchase order, products, stock levels, order lines, backorders (each by pk).
    """
    ids = sorted(set(product_ids))
    if ids:
        list(Product.objects.filter(pk__in=ids).select_for_update(no_key=True).order_by("pk").values_list("pk"))


def stock_levels_lock(*, product_ids: Iterable[int], active_only: bool = True) -> list[StockLevel]:
    """Lock the products (see products_lock), then their stock rows in pk order, and return the rows.

    Must be called inside a transaction. The warehouse comes along (not locked) for its priority.
    """
    product_ids = sorted(set(product_ids))
    products_lock(product_ids=product_ids)
    qs = StockLevel.objects.filter(product_id__in=product_ids)
    if active_only:
        qs = qs.filter(warehouse__active=True)
    return list(qs.select_related("warehouse").select_for_update(of=("self",)).order_by("pk"))


def stock_levels_for(*, product_ids: Iterable[int]) -> list[StockLevel]:
    """Unlocked read of the stock rows of active warehouses (for planning; confirm under lock)."""
    return list(
        StockLevel.objects.filter(product_id__in=set(product_ids), warehouse__active=True)
        .select_related("warehouse")
        .order_by("pk")
    )


def stock_levels_for_skus(*, skus: Iterable[str]) -> list[StockLevel]:
    """Unlocked read of the stock rows of active warehouses by SKU, with product and warehouse (planning an
    order in one query; products without such rows are not in it)."""
    return list(
        StockLevel.objects.filter(product__sku__in=set(skus), warehouse__active=True)
        .select_related("product", "warehouse")
        .order_by("pk")
    )


def allocation_order(levels: Iterable[StockLevel]) -> list[StockLevel]:
    """Warehouses in the order stock is taken from them: priority (lower first), then most available."""
    return sorted(levels, key=lambda level: (level.warehouse.priority, -level.available, level.pk))


def plan_take(levels: Iterable[StockLevel], quantity: int) -> list[tuple[StockLevel, int]]:
    """Split `quantity` across levels in allocation order; returns (level, units) for units > 0.

    Takes at most what is available in total; the caller backorders the rest.
    """
    plan = []
    remaining = quantity
    for level in allocation_order(levels):
        if remaining <= 0:
            break
        take = min(level.available, remaining)
        if take > 0:
            plan.append((level, take))
            remaining -= take
    return plan


def products_with_stock(qs: QuerySet[Product] | None = None) -> QuerySet[Product]:
    """Products annotated with on_hand, allocated and available summed over active warehouses."""
    from django.db.models import F, Q
    from django.db.models.functions import Coalesce

    qs = qs if qs is not None else Product.objects.all()
    active = Q(stock_levels__warehouse__active=True)
    return qs.annotate(
        total_on_hand=Coalesce(Sum("stock_levels__on_hand", filter=active), 0),
        total_allocated=Coalesce(Sum("stock_levels__allocated", filter=active), 0),
    ).annotate(total_available=F("total_on_hand") - F("total_allocated"))


class Availability(TextChoices):
    IN_STOCK = "in_stock", "In stock"
    LOW_STOCK = "low_stock", "Low stock"
    BACKORDER = "backorder", "Backorder"
    OUT_OF_STOCK = "out_of_stock", "Out of stock"


def availability_for(*, product: Product, available: int) -> str:
    """What a storefront shows: in_stock, low_stock (0 < available <= max(reorder point, safety stock)),
    backorder (orderable, will wait), out_of_stock (not orderable: backorders denied or discontinued)."""
    if available > 0:
        return (
            Availability.LOW_STOCK
            if available <= max(product.reorder_point, product.safety_stock)
            else Availability.IN_STOCK
        )
    return Availability.BACKORDER if product.is_backorderable else Availability.OUT_OF_STOCK
