from collections.abc import Iterable

from django.db import connection
from django.db.models import QuerySet, Sum, TextChoices

from .dbutils import Read, reads_in_one_trip
from .models import Product, StockLevel, Warehouse


def products_lock(*, product_ids: Iterable[int]) -> None:
    """Take the per-SKU mutex: the product rows, FOR NO KEY UPDATE, in pk order.

    Every write to a product's stock, queue or ETAs takes it first, so it also serialises products
    that have no stock rows yet. NO KEY: inserts of order lines referencing the product never wait.
    Global lock order: purchase order, products, stock levels, order lines, backorders (each by pk).
    """
    ids = sorted(set(product_ids))
    if not ids:
        return
    if connection.vendor == "postgresql":  # taken while others wait for it: no ORM build in the lock window
        with connection.cursor() as cursor:
            cursor.execute(_PRODUCTS_LOCK, [ids])
        return
    list(Product.objects.filter(pk__in=ids).select_for_update(no_key=True).order_by("pk").values_list("pk"))


_PRODUCTS_LOCK = (
    f'SELECT "id" FROM "{Product._meta.db_table}" WHERE "id" = ANY(%s::bigint[]) ORDER BY "id" FOR NO KEY UPDATE'
)
_AVAILABLE_LOCK = f"""
SELECT s."id", s."product_id", s."on_hand" - s."allocated"
FROM "{StockLevel._meta.db_table}" s JOIN "{Warehouse._meta.db_table}" w ON w."id" = s."warehouse_id"
WHERE s."product_id" = ANY(%s::bigint[]) AND w."active"
ORDER BY s."id" FOR UPDATE OF s
"""


def stock_available_lock(*, product_ids: Iterable[int]) -> list[tuple[int, int, int]]:
    """stock_levels_lock of active warehouses' rows for a caller that only checks them: (stock row id, product id,
    units available) per row, in pk order, no model instances. On PostgreSQL one round trip of fixed-text
    statements (see stock_available_lock_reads)."""
    product_ids = sorted(set(product_ids))
    if connection.vendor != "postgresql":
        return [(level.pk, level.product_id, level.available) for level in stock_levels_lock(product_ids=product_ids)]
    return reads_in_one_trip(*stock_available_lock_reads(product_ids=product_ids))[-1]


def stock_available_lock_reads(*, product_ids: Iterable[int]) -> list[Read]:
    """PostgreSQL: stock_available_lock's statements, for a caller that sends more reads in the same round trip
    (inventory.dbutils.reads_in_one_trip); the last one's rows are stock_available_lock's."""
    ids = sorted(set(product_ids))
    return [Read(_PRODUCTS_LOCK, [ids]), Read(_AVAILABLE_LOCK, [ids])]


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
