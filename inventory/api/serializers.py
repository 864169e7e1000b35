from datetime import date

from django.core.validators import RegexValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from backorders.selectors import product_next_eta
from config.api.fields import MAX_INTEGER, MAX_SMALL_INTEGER, URL_SAFE_IDENTIFIER, StrictModelSerializer
from inventory.models import Product, Warehouse
from inventory.selectors import Availability, availability_for


class WarehouseSerializer(StrictModelSerializer):
    """A place stock is kept. Orders are allocated from active warehouses, lower priority number first."""

    class Meta:
        model = Warehouse
        fields = ["code", "name", "priority", "active"]
        extra_kwargs = {
            "code": {
                "validators": [
                    UniqueValidator(
                        queryset=Warehouse.objects.all(), message="A warehouse with this code already exists."
                    )
                ]
            },
            "priority": {"max_value": MAX_SMALL_INTEGER},
        }


class ProductSerializer(StrictModelSerializer):
    """A product with its stock summed over active warehouses and what a storefront shows for it.

    Expects an instance from `inventory.selectors.products_with_stock` (the total_* annotations).
    """

    on_hand = serializers.IntegerField(source="total_on_hand", read_only=True)
    allocated = serializers.IntegerField(source="total_allocated", read_only=True)
    available = serializers.IntegerField(source="total_available", read_only=True)
    availability = serializers.SerializerMethodField()
    next_eta = serializers.SerializerMethodField()

    class Meta:
        model = Product
        fields = [
            "sku",
            "name",
            "backorders_allowed",
            "discontinued",
            "lead_time_days",
            "safety_stock",
            "reorder_point",
            "on_hand",
            "allocated",
            "available",
            "availability",
            "next_eta",
        ]
        extra_kwargs = {
            "sku": {
                "help_text": "Unique; no spaces or slashes. Set when the product is created, it cannot change.",
                "validators": [
                    RegexValidator(URL_SAFE_IDENTIFIER, message="A SKU has no spaces or slashes."),
                ],
            },
            "lead_time_days": {"max_value": MAX_SMALL_INTEGER},
            "safety_stock": {"max_value": MAX_INTEGER},
            "reorder_point": {"max_value": MAX_INTEGER},
        }

    def validate_sku(self, value: str) -> str:
        if self.instance is not None:
            if value != self.instance.sku:
                raise serializers.ValidationError(
                    f"The SKU of an existing product cannot be changed (it is {self.instance.sku!r}). "
                    "Create a new product with the new SKU instead."
                )
            return value
        if Product.objects.filter(sku=value).exists():
            raise serializers.ValidationError("A product with this SKU already exists.")
        return value

    @extend_schema_field(serializers.ChoiceField(choices=Availability.choices))
    def get_availability(self, product: Product) -> str:
        return availability_for(product=product, available=product.total_available)

    @extend_schema_field(serializers.DateField(allow_null=True))
    def get_next_eta(self, product: Product) -> date | None:
        """One query, only for products that are out of stock and backorderable."""
        return product_next_eta(product=product, available=product.total_available)
