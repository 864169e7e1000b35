from django.db.models import QuerySet
from rest_framework.filters import OrderingFilter


class StableOrderingFilter(OrderingFilter):
    """?ordering= with the primary key as the last key, so rows that tie never repeat or go missing across pages."""

    def get_ordering(self, request, queryset: QuerySet, view) -> list[str] | None:
        ordering = super().get_ordering(request, queryset, view)
        if not ordering:
            return ordering
        ordering = list(ordering)
        if not any(isinstance(key, str) and key.lstrip("-") in ("pk", "id") for key in ordering):
            ordering.append("pk")
        return ordering
