from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone
from django_filters import rest_framework as filters

from backorders.models import Backorder
from backorders.selectors import overdue_q
from inventory.api.filters import SkuInFilter
from inventory.models import PurchaseOrder, PurchaseOrderLine
from orders.models import SalesOrder


class OrderFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=SalesOrder.Status.choices)
    customer = filters.CharFilter(method="filter_customer", help_text="Customer email (case does not matter).")

    class Meta:
        model = SalesOrder
        fields = ["status", "customer"]

    def filter_customer(self, queryset: QuerySet[SalesOrder], name: str, value: str) -> QuerySet[SalesOrder]:
        # Emails are stored lower-cased (placement normalises them), so an exact match uses the index.
        return queryset.filter(customer__email=value.strip().lower())


class BackorderFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Backorder.Status.choices)
    sku = SkuInFilter(field_name="product__sku", lookup_expr="in", help_text="One SKU, or several separated by commas.")
    customer = filters.CharFilter(method="filter_customer", help_text="Customer email (case does not matter).")
    eta_before = filters.DateFilter(field_name="eta", lookup_expr="lte", help_text="ETA on or before this date.")
    eta_after = filters.DateFilter(field_name="eta", lookup_expr="gte", help_text="ETA on or after this date.")
    overdue = filters.BooleanFilter(
        method="filter_overdue",
        help_text="true: waiting lines whose ETA or whose order's ship-by date is before today; false: all others.",
    )

    class Meta:
        model = Backorder
        fields = ["status", "sku", "customer", "eta_before", "eta_after", "overdue"]

    def filter_customer(self, queryset: QuerySet[Backorder], name: str, value: str) -> QuerySet[Backorder]:
        return queryset.filter(line__order__customer__email=value.strip().lower())

    def filter_overdue(self, queryset: QuerySet[Backorder], name: str, value: bool) -> QuerySet[Backorder]:
        overdue = overdue_q(as_of=timezone.localdate())
        return queryset.filter(overdue) if value else queryset.exclude(overdue)


class PurchaseOrderFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=PurchaseOrder.Status.choices)
    warehouse = filters.CharFilter(field_name="warehouse__code", help_text="Receiving warehouse code.")
    sku = SkuInFilter(method="filter_sku", help_text="POs with a line for this SKU (or several, comma-separated).")

    class Meta:
        model = PurchaseOrder
        fields = ["status", "warehouse", "sku"]

    def filter_sku(self, queryset: QuerySet[PurchaseOrder], name: str, value: list[str]) -> QuerySet[PurchaseOrder]:
        lines = PurchaseOrderLine.objects.filter(purchase_order=OuterRef("pk"), product__sku__in=value)
        return queryset.filter(Exists(lines))
