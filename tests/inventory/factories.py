import factory

from inventory.models import Product, StockLevel, StockMovement, Warehouse


class WarehouseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Warehouse
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"WH{n}")
    name = factory.LazyAttribute(lambda o: f"Warehouse {o.code}")
    priority = factory.Sequence(lambda n: n + 1)
    active = True


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product
        django_get_or_create = ("sku",)

    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Faker("catch_phrase")
    backorders_allowed = True
    discontinued = False
    lead_time_days = 14


def stock(product: Product, warehouse: Warehouse, units: int, reason: str = "Initial count") -> StockLevel:
    """Put `units` on hand through the ledger, as a real stock count would (keeps the ledger invariant)."""
    from inventory.services import stock_adjust

    stock_adjust(product=product, warehouse=warehouse, delta=units, reason=reason, source="test")
    return StockLevel.objects.get(product=product, warehouse=warehouse)


__all__ = ["ProductFactory", "StockMovement", "WarehouseFactory", "stock"]


def purchase_order(warehouse: Warehouse, *lines: tuple[str, int], days: int = 10, **kwargs):
    """An ordered PO through the service (so ETAs re-peg): purchase_order(wh, ("SKU", 5), days=10)."""
    from datetime import timedelta

    from django.utils import timezone

    from backorders.services.purchasing import PurchaseLineRequest, purchase_order_create

    return purchase_order_create(
        warehouse=warehouse,
        expected_date=timezone.localdate() + timedelta(days=days),
        lines=[PurchaseLineRequest(sku, qty) for sku, qty in lines],
        **kwargs,
    )
