"""Input serializers check the shape and types of a request; the services decide everything else
(unknown or repeated SKUs, stock, what can be cancelled). Output serializers render what was stored."""

from datetime import date

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from backorders.models import Backorder
from config.api.fields import MAX_UNITS, URL_SAFE_IDENTIFIER, StrictBooleanField, StrictIntegerField
from inventory.models import Product, Warehouse
from orders.models import Customer, OrderLine, SalesOrder

MAX_LINES = 500


class CustomerInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254, help_text="Identifies the customer; an existing one is reused.")
    name = serializers.CharField(max_length=200)
    tier = serializers.ChoiceField(
        choices=Customer.Tier.choices, required=False, help_text="Sets the customer's tier when given."
    )


class LineInputSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_UNITS)


class OrderCreateSerializer(serializers.Serializer):
    customer = CustomerInputSerializer()
    lines = LineInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)
    ship_complete = StrictBooleanField(
        required=False, default=False, help_text="Ship nothing until every line is fully allocated."
    )
    number = serializers.RegexField(
        URL_SAFE_IDENTIFIER,
        max_length=40,
        required=False,
        error_messages={"invalid": "An order number has no spaces or slashes."},
        help_text="Your order number (unique); generated when omitted.",
    )
    ship_by = serializers.DateField(
        required=False, allow_null=True, default=None, help_text="The ship date promised at checkout, if any."
    )
    credit_applied = StrictBooleanField(
        required=False, default=False, help_text="The customer applied to the seller for credit with this order."
    )


class OrderCancelSerializer(serializers.Serializer):
    lines = LineInputSerializer(
        many=True,
        required=False,
        allow_empty=False,
        max_length=MAX_LINES,
        help_text="Units to cancel per SKU; omit to cancel everything not yet shipped.",
    )


class CustomerSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = ["email", "name", "tier"]
        read_only_fields = fields


class OrderLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    eta = serializers.SerializerMethodField()

    class Meta:
        model = OrderLine
        fields = ["sku", "quantity", "allocated", "backordered", "shipped", "cancelled", "eta"]
        read_only_fields = fields

    @extend_schema_field(serializers.DateField(allow_null=True, help_text="ETA of the waiting units, if any."))
    def get_eta(self, line: OrderLine) -> date | None:
        try:
            backorder = line.backorder  # select_related by orders.selectors.order_with_lines
        except Backorder.DoesNotExist:
            return None
        return backorder.eta if backorder.status == Backorder.Status.WAITING else None


class OrderSerializer(serializers.ModelSerializer):
    """An order as stored. Expects an instance from orders.selectors.order_with_lines."""

    customer = CustomerSerializer(read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = SalesOrder
        fields = ["number", "status", "customer", "placed_at", "ship_complete", "ship_by", "credit_applied", "lines"]
        read_only_fields = fields


class StockAdjustmentSerializer(serializers.Serializer):
    sku = serializers.SlugRelatedField(
        slug_field="sku",
        queryset=Product.objects.all(),
        error_messages={"does_not_exist": "No product with SKU {value!r}.", "invalid": "Must be a SKU (a string)."},
    )
    warehouse = serializers.SlugRelatedField(
        slug_field="code",
        queryset=Warehouse.objects.all(),
        help_text="Warehouse code.",
        error_messages={
            "does_not_exist": "No warehouse with code {value!r}.",
            "invalid": "Must be a warehouse code (a string).",
        },
    )
    delta = StrictIntegerField(min_value=-MAX_UNITS, max_value=MAX_UNITS, help_text="Signed change of on hand; not 0.")
    reason = serializers.CharField(max_length=255, help_text="Why, for the stock ledger (e.g. 'Cycle count').")


class StockAdjustmentResultSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The stock ledger row.")
    sku = serializers.CharField()
    warehouse = serializers.CharField()
    delta = serializers.IntegerField()
    reason = serializers.CharField()
    on_hand = serializers.IntegerField(help_text="On hand of this SKU at this warehouse after the change.")
    allocated = serializers.IntegerField(help_text="Allocated at this warehouse after the change and any fill.")
    filled_lines = serializers.IntegerField(help_text="Waiting order lines that received stock from this change.")
    created_at = serializers.DateTimeField()
