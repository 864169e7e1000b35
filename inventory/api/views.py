from django.db.models import F, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, viewsets

from backorders.services.catalog import product_update
from config.api.fields import save_unique
from config.api.schema import error_responses
from config.api.views import NamedNotFoundMixin
from inventory.models import Product, Warehouse
from inventory.selectors import products_with_stock

from .filters import ProductFilter, WarehouseFilter
from .serializers import ProductSerializer, WarehouseSerializer


@extend_schema_view(
    list=extend_schema(
        summary="List warehouses",
        description="Lower priority numbers are allocated from first.",
        responses={200: WarehouseSerializer(many=True), **error_responses(400, 401, 403)},
    ),
    retrieve=extend_schema(
        summary="Get a warehouse", responses={200: WarehouseSerializer, **error_responses(401, 403, 404)}
    ),
    create=extend_schema(
        summary="Create a warehouse",
        request=WarehouseSerializer,
        responses={201: WarehouseSerializer, **error_responses(400, 401, 403)},
    ),
)
class WarehouseViewSet(
    NamedNotFoundMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Warehouses (Django model permissions on inventory.Warehouse)."""

    queryset = Warehouse.objects.all()
    serializer_class = WarehouseSerializer
    lookup_field = "code"
    not_found_message = "No warehouse with code {value!r}."
    filterset_class = WarehouseFilter
    ordering_fields = ["priority", "code", "name"]

    def perform_create(self, serializer: WarehouseSerializer) -> None:
        save_unique(serializer, field="code", message="A warehouse with this code already exists.")


@extend_schema_view(
    list=extend_schema(
        summary="List products with availability",
        description="Stock is summed over active warehouses. `next_eta` is the ETA a new one-unit order would get.",
        responses={200: ProductSerializer(many=True), **error_responses(400, 401, 403)},
    ),
    retrieve=extend_schema(
        summary="Get a product", responses={200: ProductSerializer, **error_responses(401, 403, 404)}
    ),
    create=extend_schema(
        summary="Create a product",
        request=ProductSerializer,
        responses={201: ProductSerializer, **error_responses(400, 401, 403)},
    ),
    partial_update=extend_schema(
        summary="Change a product",
        description="Any writable field except `sku`, which cannot change once the product exists.",
        request=ProductSerializer,
        responses={200: ProductSerializer, **error_responses(400, 401, 403, 404)},
    ),
)
class ProductViewSet(
    NamedNotFoundMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Products (Django model permissions on inventory.Product). PATCH only: no PUT, no DELETE."""

    queryset = Product.objects.all()
    serializer_class = ProductSerializer
    lookup_field = "sku"
    lookup_value_regex = "[^/]+"
    not_found_message = "No product with SKU {value!r}."
    filterset_class = ProductFilter
    ordering_fields = ["sku", "name", "lead_time_days", "on_hand", "available", "created_at", "updated_at"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Product]:
        # Aliases make the stock sums orderable under their API names (?ordering=-available). The explicit
        # order_by: Django ignores Meta.ordering on a GROUP BY query, and pages need a stable order.
        return (
            products_with_stock(Product.objects.select_related("supplier"))  # supplier: lead time for next_eta
            .alias(on_hand=F("total_on_hand"), available=F("total_available"))
            .order_by("sku")
        )

    def _reload(self, serializer: ProductSerializer) -> None:
        """Answer with the saved row and fresh stock sums (the serializer reads the annotations)."""
        serializer.instance = self.get_queryset().get(pk=serializer.instance.pk)

    def perform_create(self, serializer: ProductSerializer) -> None:
        save_unique(serializer, field="sku", message="A product with this SKU already exists.")
        self._reload(serializer)

    def perform_update(self, serializer: ProductSerializer) -> None:
        product_update(product=serializer.instance, changes=serializer.validated_data)
        self._reload(serializer)
