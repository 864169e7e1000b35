from django.db.models import QuerySet
from django_filters import rest_framework as filters

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
