from django.db.models import F, Q, QuerySet
from django.db.models.functions import Greatest
from django_filters import rest_framework as filters

from inventory.models import Product, Warehouse
from inventory.selectors import Availability


def availability_q(availability: str) -> Q:
    """The storefront availability states as SQL over `products_with_stock` annotations.

    Mirrors inventory.selectors.availability_for (tests check they agree on every state).
    """
    low_stock_threshold = Greatest(F("reorder_point"), F("safety_stock"))
    orderable = Q(backorders_allowed=True, discontinued=False)
    return {
        Availability.IN_STOCK: Q(total_available__gt=0) & Q(total_available__gt=low_stock_threshold),
        Availability.LOW_STOCK: Q(total_available__gt=0) & Q(total_available__lte=low_stock_threshold),
        Availability.BACKORDER: Q(total_available__lte=0) & orderable,
        Availability.OUT_OF_STOCK: Q(total_available__lte=0) & ~orderable,
    }[availability]


class SkuInFilter(filters.BaseInFilter, filters.CharFilter):
    pass


class ProductFilter(filters.FilterSet):
    sku = SkuInFilter(field_name="sku", lookup_expr="in", help_text="One SKU, or several separated by commas.")
    availability = filters.ChoiceFilter(
        choices=Availability.choices, method="filter_availability", help_text="What a storefront shows."
    )

    class Meta:
        model = Product
        fields = ["sku", "availability", "backorders_allowed", "discontinued"]

    def filter_availability(self, queryset: QuerySet[Product], name: str, value: str) -> QuerySet[Product]:
        return queryset.filter(availability_q(value))


class WarehouseFilter(filters.FilterSet):
    class Meta:
        model = Warehouse
        fields = ["active"]
