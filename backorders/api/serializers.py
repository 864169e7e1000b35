"""Input serializers check the shape and types of a request; the services decide everything else
(unknown or repeated SKUs, stock, what can be cancelled). Output serializers render what was stored."""

from datetime import date

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import empty

from backorders.models import Backorder, BackorderPolicy, EtaChange
from backorders.services.policy import EDITABLE_FIELDS
from config.api.fields import (
    MAX_SMALL_INTEGER,
    MAX_UNITS,
    URL_SAFE_IDENTIFIER,
    PlanningDateField,
    RejectUnknownFieldsMixin,
    StrictBooleanField,
    StrictIntegerField,
    StrictModelSerializer,
    StrictSlugRelatedField,
)
from inventory.models import Product, PurchaseOrder, PurchaseOrderLine, Supplier, Warehouse
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


# POST orders/. The declared fields are the rules (and the schema, and the wording of every error). Every order
# the storefront sends is checked against them, and building them (about 35 field objects, deep copies of the
# declared ones) cost more than checking: the usual body (customer email and name, lines of SKU and quantity, the
# yes/no options) is checked directly by `_usual_order` instead, which accepts only what the fields accept and
# answers the same validated data; anything else, including every invalid body, goes through the fields.
# tests/backorders/test_api_order_input.py compares the two. (A comment, not a docstring: that would be the schema.)
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
    ship_by = PlanningDateField(
        required=False, allow_null=True, default=None, help_text="The ship date promised at checkout, if any."
    )
    credit_applied = StrictBooleanField(
        required=False, default=False, help_text="The customer applied to the seller for credit with this order."
    )
    cash_on_delivery = StrictBooleanField(
        required=False, default=False, help_text="Paid on delivery (outside the FTC mail order rule)."
    )
    delivery_essential = StrictBooleanField(
        required=False,
        default=False,
        help_text="EU/UK: the agreed delivery date is essential; if missed the customer may terminate at once.",
    )

    def run_validation(self, data: object = empty) -> dict:
        usual = _usual_order(data)
        return usual if usual is not None else super().run_validation(data)


_ORDER_OPTIONS = ("ship_complete", "credit_applied", "cash_on_delivery", "delivery_essential")
_USUAL_ORDER_KEYS = frozenset(("customer", "lines", *_ORDER_OPTIONS))
_CUSTOMER_KEYS = frozenset(("email", "name"))
_CUSTOMER_KEYS_WITH_TIER = frozenset(("email", "name", "tier"))
_LINE_KEYS = frozenset(("sku", "quantity"))
_TIERS = frozenset(value for value, _ in Customer.Tier.choices)


def _text(value: object, max_length: int) -> str | None:
    """What a CharField makes of a string it accepts (trimmed; not blank, not too long, no NUL or surrogate)."""
    if type(value) is not str:
        return None
    value = value.strip()
    if not value or len(value) > max_length or "\x00" in value:
        return None
    try:
        value.encode()  # a lone surrogate does not encode
    except UnicodeEncodeError:
        return None
    return value


def _usual_order(data: object) -> dict | None:
    """OrderCreateSerializer's validated data for a usual, valid body; None for anything else (the fields decide)."""
    if type(data) is not dict or not data.keys() <= _USUAL_ORDER_KEYS:
        return None
    customer, lines = data.get("customer"), data.get("lines")
    if type(customer) is not dict or type(lines) is not list or not 0 < len(lines) <= MAX_LINES:
        return None
    if customer.keys() != _CUSTOMER_KEYS and customer.keys() != _CUSTOMER_KEYS_WITH_TIER:
        return None
    email, name = _text(customer["email"], 254), _text(customer["name"], 200)
    if email is None or name is None:
        return None
    try:
        validate_email(email)
    except DjangoValidationError:
        return None
    valid_customer = {"email": email, "name": name}
    if "tier" in customer:
        if type(customer["tier"]) is not str or customer["tier"] not in _TIERS:
            return None
        valid_customer["tier"] = customer["tier"]
    valid_lines = []
    for line in lines:
        if type(line) is not dict or line.keys() != _LINE_KEYS:
            return None
        sku, quantity = _text(line["sku"], 64), line["quantity"]
        if sku is None or type(quantity) is not int or not 1 <= quantity <= MAX_UNITS:
            return None
        valid_lines.append({"sku": sku, "quantity": quantity})
    options = {name: data.get(name, False) for name in _ORDER_OPTIONS}
    if any(type(value) is not bool for value in options.values()):
        return None
    return {"customer": valid_customer, "lines": valid_lines, "ship_by": None, **options}


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


def _waiting_eta(line: OrderLine) -> date | None:
    try:
        backorder = line.backorder  # select_related by orders.selectors.order_with_lines
    except Backorder.DoesNotExist:
        return None
    return backorder.eta if backorder.status == Backorder.Status.WAITING else None


class OrderLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    eta = serializers.SerializerMethodField()

    class Meta:
        model = OrderLine
        fields = ["sku", "quantity", "allocated", "backordered", "shipped", "cancelled", "eta"]
        read_only_fields = fields

    @extend_schema_field(serializers.DateField(allow_null=True, help_text="ETA of the waiting units, if any."))
    def get_eta(self, line: OrderLine) -> date | None:
        return _waiting_eta(line)


# DRF's own formatting of a datetime and a date (ISO 8601, in the current time zone), used by to_representation.
_DATETIME = serializers.DateTimeField()
_DATE = serializers.DateField()


class OrderSerializer(serializers.ModelSerializer):
    """An order as stored. Expects an instance from orders.selectors.order_with_lines."""

    customer = CustomerSerializer(read_only=True)
    lines = OrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = SalesOrder
        fields = ["number", "status", "customer", "placed_at", "ship_complete", "ship_by", "credit_applied", "lines"]
        read_only_fields = fields

    def to_representation(self, order: SalesOrder) -> dict:
        """Exactly what the declared fields give (they stay the schema), written out: every order the API places,
        reads or cancels goes through here, and building the nested ModelSerializers' fields cost more than the
        query behind them. tests/backorders/test_api_orders_cost.py compares the two on every kind of line."""
        customer = order.customer
        return {
            "number": order.number,
            "status": str(order.status),
            "customer": {"email": customer.email, "name": customer.name, "tier": str(customer.tier)},
            "placed_at": _DATETIME.to_representation(order.placed_at),
            "ship_complete": bool(order.ship_complete),
            "ship_by": _DATE.to_representation(order.ship_by) if order.ship_by is not None else None,
            "credit_applied": bool(order.credit_applied),
            "lines": [
                {
                    "sku": line.product.sku,
                    "quantity": line.quantity,
                    "allocated": line.allocated,
                    "backordered": line.backordered,
                    "shipped": line.shipped,
                    "cancelled": line.cancelled,
                    "eta": _waiting_eta(line),
                }
                for line in order.lines.all()
            ],
        }


class StockAdjustmentSerializer(serializers.Serializer):
    sku = StrictSlugRelatedField(
        slug_field="sku",
        queryset=Product.objects.all(),
        error_messages={"does_not_exist": "No product with SKU {value!r}.", "invalid": "Must be a SKU (a string)."},
    )
    warehouse = StrictSlugRelatedField(
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


# --- backorders -------------------------------------------------------------------------------------


class BackorderSerializer(serializers.ModelSerializer):
    """A waiting (or filled, or cancelled) part of an order line.

    Expects select_related("line__order__customer", "product") (see BackorderViewSet.get_queryset).
    """

    order = serializers.CharField(source="line.order.number", read_only=True, help_text="The order number.")
    sku = serializers.CharField(source="product.sku", read_only=True)
    customer = serializers.EmailField(source="line.order.customer.email", read_only=True, help_text="Customer email.")
    ship_by = serializers.DateField(
        source="line.order.ship_by", read_only=True, allow_null=True, help_text="The order's promised ship date."
    )

    class Meta:
        model = Backorder
        fields = [
            "id",
            "order",
            "sku",
            "customer",
            "quantity",
            "original_quantity",
            "status",
            "eta",
            "eta_source",
            "priority",
            "created_at",
            "placed_at",
            "ship_by",
        ]
        read_only_fields = fields
        extra_kwargs = {
            "eta": {"help_text": "Expected ship date of the waiting units; null when no restock is expected."},
            "eta_source": {
                "help_text": "purchase_order (pegged to an open PO), lead_time, manual (set by customer service), "
                "or empty (no ETA)."
            },
            "placed_at": {"help_text": "When the order was placed (its place in a FIFO queue)."},
        }


class EtaChangeSerializer(serializers.ModelSerializer):
    user = serializers.CharField(
        source="user.username", read_only=True, allow_null=True, help_text="Who changed it; null for a recompute."
    )

    class Meta:
        model = EtaChange
        fields = ["old_eta", "new_eta", "old_source", "new_source", "reason", "user", "created_at"]
        read_only_fields = fields
        extra_kwargs = {
            "old_source": {"help_text": "purchase_order, lead_time, manual, or empty (no ETA)."},
            "new_source": {"help_text": "purchase_order, lead_time, manual, or empty (no ETA)."},
        }


class BackorderDetailSerializer(BackorderSerializer):
    """A backorder with every change of its ETA, newest first. Needs eta_changes prefetched (with user)."""

    eta_history = EtaChangeSerializer(source="eta_changes", many=True, read_only=True)

    class Meta(BackorderSerializer.Meta):
        fields = [*BackorderSerializer.Meta.fields, "eta_history"]
        read_only_fields = fields


class BackorderDetailSchema(OpenApiSerializerExtension):
    """OpenAPI: the detail is allOf [Backorder, {eta_history}], i.e. exactly "a backorder plus its history".

    Also keeps each field (and the backorder `status` enum) in one component instead of two copies.
    """

    target_class = BackorderDetailSerializer

    def map_serializer(self, auto_schema, direction) -> dict:
        full = auto_schema._map_serializer(self.target_class, direction, bypass_extensions=True)
        base = auto_schema.resolve_serializer(BackorderSerializer, direction)
        extra = {
            "type": "object",
            "properties": {"eta_history": full["properties"]["eta_history"]},
            "required": ["eta_history"],
        }
        return {"allOf": [base.ref, extra]}


class BackorderEtaSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    """PATCH backorders/{id}/: customer service sets (or clears) the ETA; nothing else can change here."""

    eta = PlanningDateField(
        allow_null=True,
        help_text="The new ETA (today or later); null clears the manual ETA and returns to the computed one.",
    )
    # EtaChange.reason holds 255 characters and clearing prefixes "Manual ETA cleared: ".
    reason = serializers.CharField(max_length=200, help_text="Why, kept in the ETA history.")


# --- purchase orders --------------------------------------------------------------------------------


class PurchaseOrderLineSerializer(serializers.ModelSerializer):
    sku = serializers.CharField(source="product.sku", read_only=True)
    outstanding = serializers.IntegerField(read_only=True, help_text="Ordered but not yet received.")
    arrival_date = serializers.DateField(
        read_only=True, help_text="The line's own expected date, else the purchase order's."
    )

    class Meta:
        model = PurchaseOrderLine
        fields = ["sku", "quantity", "received", "outstanding", "expected_date", "arrival_date"]
        read_only_fields = fields


class PurchaseOrderSerializer(serializers.ModelSerializer):
    """A purchase order as stored. Expects PurchaseOrderViewSet.get_queryset (supplier, warehouse, lines)."""

    supplier = serializers.CharField(
        source="supplier.name", read_only=True, allow_null=True, help_text="Supplier name, if any."
    )
    warehouse = serializers.CharField(source="warehouse.code", read_only=True, help_text="Receiving warehouse code.")
    lines = PurchaseOrderLineSerializer(many=True, read_only=True)

    class Meta:
        model = PurchaseOrder
        fields = ["id", "number", "supplier", "warehouse", "status", "expected_date", "created_at", "lines"]
        read_only_fields = fields


class PurchaseOrderLineInputSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_UNITS, help_text="Units ordered.")
    expected_date = PlanningDateField(
        required=False, allow_null=True, default=None, help_text="This line's own arrival date; default the PO's."
    )


class PurchaseOrderCreateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    supplier = StrictSlugRelatedField(
        slug_field="name",
        queryset=Supplier.objects.all(),
        required=False,
        allow_null=True,
        default=None,
        help_text="The supplier's name, exactly as stored (names are unique). Optional.",
        error_messages={
            "does_not_exist": "No supplier named {value!r}.",
            "invalid": "Must be a supplier name (a string), not an id.",
        },
    )
    warehouse = StrictSlugRelatedField(
        slug_field="code",
        queryset=Warehouse.objects.all(),
        help_text="Code of the warehouse that receives the goods.",
        error_messages={
            "does_not_exist": "No warehouse with code {value!r}.",
            "invalid": "Must be a warehouse code (a string).",
        },
    )
    expected_date = PlanningDateField(help_text="When the goods are expected to arrive.")
    number = serializers.CharField(
        max_length=40, required=False, help_text="Your PO number (unique); generated when omitted."
    )
    status = serializers.ChoiceField(
        choices=[PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.ORDERED],
        default=PurchaseOrder.Status.ORDERED,
        help_text="ordered (the default) counts for ETAs at once; a draft does not until it is marked ordered.",
    )
    lines = PurchaseOrderLineInputSerializer(many=True, allow_empty=False, max_length=MAX_LINES)


class PurchaseOrderUpdateSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    expected_date = PlanningDateField(required=False, help_text="New arrival date of the whole PO.")
    status = serializers.ChoiceField(
        choices=[PurchaseOrder.Status.ORDERED],
        required=False,
        help_text="Only `ordered`, to place a draft. Cancel and receive have their own endpoints.",
        error_messages={
            "invalid_choice": "Only a draft can be marked ordered here; use .../cancel/ or .../receive/ instead."
        },
    )
    lines = PurchaseOrderLineInputSerializer(
        many=True,
        required=False,
        allow_empty=False,
        max_length=MAX_LINES,
        help_text=(
            "Lines to add or change, matched by SKU; lines not listed stay as they are. A listed line's quantity "
            "and expected_date are replaced (no expected_date: the PO's date). A quantity cannot drop below what "
            "was already received."
        ),
    )


class ReceiveLineSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    sku = serializers.CharField(max_length=64)
    quantity = StrictIntegerField(min_value=1, max_value=MAX_UNITS, help_text="Units that arrived.")


class PurchaseOrderReceiveSerializer(RejectUnknownFieldsMixin, serializers.Serializer):
    lines = ReceiveLineSerializer(
        many=True,
        required=False,
        allow_empty=False,
        max_length=MAX_LINES,
        help_text="Units that arrived per SKU; omit to receive everything still outstanding.",
    )
    dry_run = StrictBooleanField(
        required=False, default=False, help_text="Preview only: who would be filled and who keeps waiting."
    )


class FilledEntrySerializer(serializers.Serializer):
    backorder = serializers.IntegerField(help_text="Backorder id.")
    order = serializers.CharField(help_text="Order number.")
    customer = serializers.EmailField()
    sku = serializers.CharField()
    units = serializers.IntegerField(help_text="Units this receipt allocated to the line.")
    still_waiting = serializers.IntegerField(help_text="Units of the line still waiting after it.")


class WaitingEntrySerializer(serializers.Serializer):
    backorder = serializers.IntegerField(help_text="Backorder id.")
    order = serializers.CharField(help_text="Order number.")
    customer = serializers.EmailField()
    sku = serializers.CharField()
    quantity = serializers.IntegerField(help_text="Units still waiting.")


class ReceiveResultSerializer(serializers.Serializer):
    purchase_order = PurchaseOrderSerializer(help_text="The purchase order after the receipt (unchanged on a dry run).")
    received = serializers.DictField(child=serializers.IntegerField(), help_text="Units received per SKU.")
    dry_run = serializers.BooleanField(help_text="True: a preview; nothing was changed.")
    filled = FilledEntrySerializer(many=True, help_text="Waiting lines served by this receipt, in fill order.")
    still_waiting = WaitingEntrySerializer(
        many=True, help_text="Lines still waiting for the received SKUs, in queue order (at most 50 per SKU)."
    )


# --- policy -----------------------------------------------------------------------------------------


class BackorderPolicySerializer(RejectUnknownFieldsMixin, StrictModelSerializer):
    """The one backorder policy. Changing fill_strategy or handling_days re-pegs every waiting line's ETA."""

    updated_by = serializers.CharField(
        source="updated_by.username", read_only=True, allow_null=True, help_text="Who changed it last."
    )

    class Meta:
        model = BackorderPolicy
        fields = [*EDITABLE_FIELDS, "updated_at", "updated_by"]
        read_only_fields = ["updated_at", "updated_by"]
        extra_kwargs = {
            name: {"max_value": MAX_SMALL_INTEGER}
            for name in (
                "handling_days",
                "eta_change_threshold_days",
                "eta_quiet_minutes",
                "cancellation_offer_days",
                "status_update_days",
                "rolling_backorder_days",
                "status_link_days",
            )
        }
