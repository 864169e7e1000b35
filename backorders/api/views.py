"""Orders, stock adjustments, backorders, purchase orders and the policy: thin callers of
backorders.services (no business rules here)."""

from datetime import timedelta

from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from backorders.models import Backorder, BackorderPolicy, EtaChange
from backorders.services import CustomerRequest, LineRequest, order_cancel, order_place, stock_adjust_and_fill
from backorders.services.eta import backorder_set_eta
from backorders.services.policy import policy_update
from backorders.services.purchasing import (
    PurchaseLineRequest,
    ReceiveResult,
    purchase_order_cancel,
    purchase_order_create,
    purchase_order_receive,
    purchase_order_update,
)
from config.api.filters import StableOrderingFilter
from config.api.schema import ORDER_CONFLICT, STOCK_ALLOCATED, ErrorSerializer, error_response, error_responses
from config.api.views import NamedNotFoundMixin
from inventory.exceptions import Conflict
from inventory.models import PurchaseOrder, PurchaseOrderLine, StockLevel, StockMovement
from orders.models import SalesOrder
from orders.selectors import order_with_lines, order_with_lines_by_pk, order_with_lines_of

from .filters import BackorderFilter, OrderFilter, PurchaseOrderFilter
from .idempotency import IDEMPOTENCY_KEY_PARAMETER, KEY_REUSED, REPLAYED_RESPONSE_HEADER, idempotent
from .serializers import (
    BackorderDetailSerializer,
    BackorderEtaSerializer,
    BackorderPolicySerializer,
    BackorderSerializer,
    OrderCancelSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    PurchaseOrderCreateSerializer,
    PurchaseOrderReceiveSerializer,
    PurchaseOrderSerializer,
    PurchaseOrderUpdateSerializer,
    ReceiveResultSerializer,
    StockAdjustmentResultSerializer,
    StockAdjustmentSerializer,
)


def _in_days(days: int) -> str:
    """A date for an OpenAPI example (examples with dates must stay valid: today or later)."""
    return (timezone.localdate() + timedelta(days=days)).isoformat()


def _line_requests(lines: list[dict]) -> list[LineRequest]:
    return [LineRequest(sku=line["sku"], quantity=line["quantity"]) for line in lines]


@extend_schema_view(
    list=extend_schema(
        summary="List orders",
        responses={200: OrderSerializer(many=True), **error_responses(400, 401, 403)},
    ),
    retrieve=extend_schema(
        summary="Get an order",
        responses={200: OrderSerializer, **error_responses(401, 403, 404)},
    ),
)
class OrderViewSet(NamedNotFoundMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Orders. Reading needs orders.view_salesorder, placing orders.add_salesorder, cancelling
    orders.cancel_salesorder (customer service; see backorders/roles.py)."""

    queryset = SalesOrder.objects.all()
    serializer_class = OrderSerializer
    lookup_field = "number"
    lookup_value_regex = "[^/]+"
    not_found_message = "No order numbered {value!r}."
    filterset_class = OrderFilter
    ordering_fields = ["placed_at", "number", "status"]
    action_permissions = {"cancel": ["orders.cancel_salesorder"]}

    def get_queryset(self) -> QuerySet[SalesOrder]:
        return order_with_lines(SalesOrder.objects.all())

    def get_serializer_class(self) -> type:
        """The input serializer of each write (what OPTIONS describes); responses are always OrderSerializer."""
        return {"create": OrderCreateSerializer, "cancel": OrderCancelSerializer}.get(self.action, OrderSerializer)

    def _render(self, fresh: SalesOrder, status_code: int = status.HTTP_200_OK, **kwargs) -> Response:
        """The response for an order as it is now (`fresh`: read after the change, with its lines)."""
        return Response(
            OrderSerializer(fresh, context=self.get_serializer_context()).data, status=status_code, **kwargs
        )

    @extend_schema(
        summary="Place an order",
        description=(
            "Allocates what is in stock (warehouses by priority, then most available) and backorders the "
            "rest where the product allows it. If any SKU is short and cannot be backordered, the whole order "
            "is rejected (409) and nothing is written."
        ),
        request=OrderCreateSerializer,
        examples=[
            OpenApiExample(
                "Two units of one SKU",
                value={
                    "customer": {"email": "ann@example.com", "name": "Ann Example", "tier": "loyal"},
                    "lines": [{"sku": "KETTLE-1", "quantity": 2}],
                },
                request_only=True,
            )
        ],
        parameters=[IDEMPOTENCY_KEY_PARAMETER, REPLAYED_RESPONSE_HEADER],
        responses={
            201: OrderSerializer,
            **error_responses(400, 401, 403),
            409: ORDER_CONFLICT,
            422: KEY_REUSED,
        },
    )
    @idempotent
    def create(self, request: Request) -> Response:
        data = self._validated(request)
        order = order_place(
            customer=CustomerRequest(**data["customer"]),
            lines=_line_requests(data["lines"]),
            ship_complete=data["ship_complete"],
            number=data.get("number"),
            ship_by=data["ship_by"],
            credit_applied=data["credit_applied"],
            cash_on_delivery=data["cash_on_delivery"],
            delivery_essential=data["delivery_essential"],
            acting_user=request.user,
        )
        location = reverse("order-detail", kwargs={"number": order.number}, request=request)
        return self._render(order_with_lines_of(order), status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(
        summary="Cancel an order or some of its units",
        description=(
            "Waiting units are cancelled first, then allocated ones, whose stock goes to the next waiting "
            "orders. Shipped units cannot be cancelled. Without `lines`, everything not yet shipped is cancelled."
        ),
        request=OrderCancelSerializer,
        examples=[
            OpenApiExample(
                "One unit of a line", value={"lines": [{"sku": "KETTLE-1", "quantity": 1}]}, request_only=True
            ),
            OpenApiExample("Everything not yet shipped", value={}, request_only=True),
        ],
        responses={
            200: OrderSerializer,
            400: OpenApiResponse(
                ErrorSerializer,
                description="Invalid input, or `cannot_cancel` (more than is outstanding, a SKU not on the order, "
                "nothing left to cancel); `fields` names each line. Nothing was changed.",
            ),
            **error_responses(401, 403, 404),
        },
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, number: str) -> Response:
        order = self.get_object()
        data = self._validated(request)
        lines = data.get("lines")
        order_cancel(order=order, lines=_line_requests(lines) if lines is not None else None, acting_user=request.user)
        return self._render(order_with_lines_by_pk(order.pk))

    def _validated(self, request: Request) -> dict:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data


class StockAdjustmentView(GenericAPIView):
    """Change a product's on hand at one warehouse with a reason; stock that arrives fills waiting orders.

    Needs inventory.add_stockmovement (every adjustment is a stock ledger row).
    """

    queryset = StockMovement.objects.all()
    serializer_class = StockAdjustmentSerializer
    filter_backends: list = []
    pagination_class = None

    @extend_schema(
        summary="Adjust stock",
        description=(
            "Writes a ledger row and changes on hand. A positive change then fills the product's waiting "
            "backorders in queue order. On hand may not drop below what is allocated to orders (409)."
        ),
        request=StockAdjustmentSerializer,
        examples=[
            OpenApiExample(
                "Three units counted in",
                value={"sku": "KETTLE-1", "warehouse": "MAIN", "delta": 3, "reason": "Cycle count"},
                request_only=True,
            )
        ],
        responses={201: StockAdjustmentResultSerializer, **error_responses(400, 401, 403), 409: STOCK_ALLOCATED},
    )
    def post(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        product, warehouse = data["sku"], data["warehouse"]
        movement, fill = stock_adjust_and_fill(
            product=product,
            warehouse=warehouse,
            delta=data["delta"],
            reason=data["reason"],
            acting_user=request.user,
            source="api",
        )
        level = StockLevel.objects.get(pk=movement.stock_level_id)
        result = {
            "id": movement.pk,
            "sku": product.sku,
            "warehouse": warehouse.code,
            "delta": movement.quantity,
            "reason": movement.reason,
            "on_hand": level.on_hand,
            "allocated": level.allocated,
            "filled_lines": fill.lines_filled + fill.lines_partly_filled,
            "created_at": movement.created_at,
        }
        return Response(StockAdjustmentResultSerializer(result).data, status=status.HTTP_201_CREATED)


# --- backorders -------------------------------------------------------------------------------------


class BackorderClosed(Conflict):
    """An ETA edit on a line that no longer waits (filled or cancelled): nothing to date."""

    code = "backorder_closed"


@extend_schema_view(
    list=extend_schema(
        summary="List backorders",
        description=(
            "Waiting, filled and cancelled backorders. Default order: by product, then pinned priority (higher "
            "first), placed time and line. `quantity` is what still waits, `original_quantity` what was first "
            "backordered."
        ),
        responses={200: BackorderSerializer(many=True), **error_responses(400, 401, 403)},
    ),
    retrieve=extend_schema(
        summary="Get a backorder with its ETA history",
        responses={200: BackorderDetailSerializer, **error_responses(401, 403, 404)},
    ),
)
class BackorderViewSet(NamedNotFoundMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Backorders. Reading needs backorders.view_backorder; setting an ETA backorders.change_backorder_eta
    (customer service)."""

    queryset = Backorder.objects.all()
    serializer_class = BackorderSerializer
    not_found_message = "No backorder with id {value!r}."
    filterset_class = BackorderFilter
    filter_backends = [DjangoFilterBackend, StableOrderingFilter]
    ordering_fields = ["eta", "placed_at", "created_at", "priority", "quantity"]
    http_method_names = ["get", "patch", "head", "options"]
    action_permissions = {"partial_update": ["backorders.change_backorder_eta"]}

    def get_queryset(self) -> QuerySet[Backorder]:
        queryset = Backorder.objects.select_related("line__order__customer", "product")
        if self.action != "list":
            history = EtaChange.objects.select_related("user").order_by("-created_at", "-id")
            queryset = queryset.prefetch_related(Prefetch("eta_changes", queryset=history))
        return queryset

    def get_serializer_class(self) -> type:
        return {
            "list": BackorderSerializer,
            "retrieve": BackorderDetailSerializer,
            "partial_update": BackorderEtaSerializer,
        }.get(self.action, BackorderSerializer)

    @extend_schema(
        summary="Set or clear a backorder's ETA (customer service)",
        description=(
            "A manual ETA wins over the computed one until it is cleared with `eta: null`. The change is kept "
            "in `eta_history` with the reason and who made it. Only `eta` and `reason` are accepted."
        ),
        request=BackorderEtaSerializer,
        examples=[
            OpenApiExample(
                "A manual ETA",
                value={"eta": _in_days(21), "reason": "Supplier confirmed the rest ships later"},
                request_only=True,
            ),
            OpenApiExample(
                "Back to the computed ETA",
                value={"eta": None, "reason": "The PO is on time after all"},
                request_only=True,
            ),
        ],
        responses={
            200: BackorderDetailSerializer,
            **error_responses(400, 401, 404),
            403: error_response("Without backorders.change_backorder_eta (customer service). Nothing was changed."),
            409: error_response("`backorder_closed`: the line is filled or cancelled and has no ETA to set."),
        },
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        backorder = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        changed = backorder_set_eta(
            backorders=[backorder], eta=data["eta"], reason=data["reason"], acting_user=request.user
        )
        fresh = self.get_queryset().get(pk=backorder.pk)
        if not changed and fresh.status != Backorder.Status.WAITING:
            raise BackorderClosed(
                f"Backorder {fresh.pk} is {fresh.get_status_display().lower()}; only a waiting line has an ETA. "
                "Nothing was changed."
            )
        return Response(BackorderDetailSerializer(fresh, context=self.get_serializer_context()).data)


# --- purchase orders --------------------------------------------------------------------------------

PURCHASE_ORDER_CLOSED = error_response(
    "`purchase_order_closed`: the purchase order is cancelled or fully received (or has nothing outstanding "
    "to receive). Nothing was changed."
)


def _purchase_lines(lines: list[dict]) -> list[PurchaseLineRequest]:
    return [PurchaseLineRequest(line["sku"], line["quantity"], line["expected_date"]) for line in lines]


def _receive_body(result: ReceiveResult, purchase_order: PurchaseOrder) -> dict:
    skus = {line.product_id: line.product.sku for line in purchase_order.lines.all()}
    return {
        "purchase_order": purchase_order,
        "received": result.received,
        "dry_run": result.dry_run,
        "filled": [
            {
                "backorder": entry.backorder_id,
                "order": entry.order_number,
                "customer": entry.customer_email,
                "sku": skus[entry.product_id],
                "units": entry.units,
                "still_waiting": entry.still_waiting,
            }
            for entry in result.fill.entries
        ],
        "still_waiting": [
            {
                "backorder": entry.backorder_id,
                "order": entry.order_number,
                "customer": entry.customer_email,
                "sku": entry.sku,
                "quantity": entry.quantity,
            }
            for entry in result.still_waiting
        ],
    }


@extend_schema_view(
    list=extend_schema(
        summary="List purchase orders",
        description="Newest first unless ?ordering= says otherwise.",
        responses={200: PurchaseOrderSerializer(many=True), **error_responses(400, 401, 403)},
    ),
    retrieve=extend_schema(
        summary="Get a purchase order", responses={200: PurchaseOrderSerializer, **error_responses(401, 403, 404)}
    ),
)
class PurchaseOrderViewSet(
    NamedNotFoundMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Purchase orders. Reading needs inventory.view_purchaseorder, creating inventory.add_purchaseorder,
    changing and cancelling inventory.change_purchaseorder; receiving needs inventory.change_purchaseorder
    and inventory.add_stockmovement (warehouse staff: a receipt writes the stock ledger)."""

    queryset = PurchaseOrder.objects.all()
    serializer_class = PurchaseOrderSerializer
    not_found_message = "No purchase order with id {value!r}."
    filterset_class = PurchaseOrderFilter
    filter_backends = [DjangoFilterBackend, StableOrderingFilter]
    ordering_fields = ["expected_date", "created_at", "number", "status"]
    http_method_names = ["get", "post", "patch", "head", "options"]
    action_permissions = {
        "cancel": ["inventory.change_purchaseorder"],
        "receive": ["inventory.change_purchaseorder", "inventory.add_stockmovement"],
    }

    def get_queryset(self) -> QuerySet[PurchaseOrder]:
        lines = PurchaseOrderLine.objects.select_related("product").order_by("id")
        return PurchaseOrder.objects.select_related("supplier", "warehouse").prefetch_related(
            Prefetch("lines", queryset=lines)
        )

    def get_serializer_class(self) -> type:
        """The input serializer of each write (what OPTIONS describes); responses use the output serializers."""
        return {
            "create": PurchaseOrderCreateSerializer,
            "partial_update": PurchaseOrderUpdateSerializer,
            "receive": PurchaseOrderReceiveSerializer,
        }.get(self.action, PurchaseOrderSerializer)

    def _validated(self, request: Request) -> dict:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _render(self, purchase_order: PurchaseOrder, status_code: int = status.HTTP_200_OK, **kwargs) -> Response:
        fresh = self.get_queryset().get(pk=purchase_order.pk)
        return Response(
            PurchaseOrderSerializer(fresh, context=self.get_serializer_context()).data, status=status_code, **kwargs
        )

    @extend_schema(
        summary="Create a purchase order",
        description=(
            "An `ordered` purchase order counts at once: the ETAs of the waiting lines of its SKUs are re-pegged. "
            "Unknown SKUs or a SKU on two lines: 400 naming the line."
        ),
        request=PurchaseOrderCreateSerializer,
        examples=[
            OpenApiExample(
                "Ten units due in a week",
                value={
                    "warehouse": "MAIN",
                    "expected_date": _in_days(7),
                    "lines": [{"sku": "KETTLE-1", "quantity": 10}],
                },
                request_only=True,
            )
        ],
        responses={
            201: PurchaseOrderSerializer,
            **error_responses(400, 401, 403),
            409: error_response("`conflict`: a purchase order with this number exists (fields.number)."),
        },
    )
    def create(self, request: Request) -> Response:
        data = self._validated(request)
        purchase_order = purchase_order_create(
            warehouse=data["warehouse"],
            expected_date=data["expected_date"],
            lines=_purchase_lines(data["lines"]),
            supplier=data["supplier"],
            number=data.get("number"),
            status=data["status"],
            acting_user=request.user,
        )
        location = reverse("purchase-order-detail", kwargs={"pk": purchase_order.pk}, request=request)
        return self._render(purchase_order, status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(
        summary="Change a purchase order",
        description=(
            "Move the expected date, mark a draft ordered, or add/change lines (matched by SKU). The ETAs of the "
            "SKUs it carries are re-pegged."
        ),
        request=PurchaseOrderUpdateSerializer,
        responses={200: PurchaseOrderSerializer, **error_responses(400, 401, 403, 404), 409: PURCHASE_ORDER_CLOSED},
    )
    def partial_update(self, request: Request, pk: str) -> Response:
        purchase_order = self.get_object()
        data = self._validated(request)
        lines = data.get("lines")
        purchase_order_update(
            purchase_order=purchase_order,
            expected_date=data.get("expected_date"),
            status=data.get("status"),
            lines=_purchase_lines(lines) if lines is not None else None,
            acting_user=request.user,
        )
        return self._render(purchase_order)

    @extend_schema(
        summary="Cancel a purchase order",
        description="What is still outstanding will not come; waiting lines it covered are re-pegged.",
        request=None,
        responses={200: PurchaseOrderSerializer, **error_responses(401, 403, 404), 409: PURCHASE_ORDER_CLOSED},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        purchase_order = self.get_object()
        purchase_order_cancel(purchase_order=purchase_order, acting_user=request.user)
        return self._render(purchase_order)

    @extend_schema(
        summary="Receive a purchase order (or preview the receipt)",
        description=(
            "Puts the units on hand through the stock ledger, then fills each SKU's waiting lines in queue order "
            "(pinned priority, the policy's strategy, line), partially if need be. Without `lines`, everything "
            "still outstanding is received. With `dry_run: true` nothing is changed and the answer shows who "
            "would be filled and who would keep waiting."
        ),
        request=PurchaseOrderReceiveSerializer,
        examples=[
            OpenApiExample("Everything outstanding", value={}, request_only=True),
            OpenApiExample(
                "Preview one unit",
                value={"lines": [{"sku": "KETTLE-1", "quantity": 1}], "dry_run": True},
                request_only=True,
            ),
        ],
        responses={
            200: ReceiveResultSerializer,
            400: error_response(
                "Invalid input, or `over_receipt`: more than is outstanding, or a SKU not on the purchase order "
                "(fields names each line, e.g. lines[0].quantity). Nothing was received."
            ),
            **error_responses(401, 403, 404),
            409: error_response(
                "`purchase_order_closed`: the purchase order is cancelled or fully received (or has nothing "
                "outstanding to receive); or `idempotency_request_in_progress`: a request with the same "
                "Idempotency-Key is still running. Nothing was changed."
            ),
            422: KEY_REUSED,
        },
        parameters=[IDEMPOTENCY_KEY_PARAMETER, REPLAYED_RESPONSE_HEADER],
    )
    @action(detail=True, methods=["post"])
    @idempotent
    def receive(self, request: Request, pk: str) -> Response:
        purchase_order = self.get_object()
        data = self._validated(request)
        lines = data.get("lines")
        result = purchase_order_receive(
            purchase_order=purchase_order,
            lines=_line_requests(lines) if lines is not None else None,
            acting_user=request.user,
            dry_run=data["dry_run"],
        )
        fresh = self.get_queryset().get(pk=purchase_order.pk)
        body = ReceiveResultSerializer(_receive_body(result, fresh), context=self.get_serializer_context()).data
        return Response(body)


# --- policy -----------------------------------------------------------------------------------------


class PolicyView(GenericAPIView):
    """The backorder policy (one row). Reading needs backorders.view_backorderpolicy, changing
    backorders.change_backorderpolicy (managers)."""

    queryset = BackorderPolicy.objects.all()
    serializer_class = BackorderPolicySerializer
    filter_backends: list = []
    pagination_class = None

    def _render(self) -> Response:
        policy = BackorderPolicy.objects.select_related("updated_by").get(pk=BackorderPolicy.ensure().pk)
        return Response(BackorderPolicySerializer(policy).data)

    @extend_schema(
        summary="Get the backorder policy",
        responses={200: BackorderPolicySerializer, **error_responses(401, 403)},
    )
    def get(self, request: Request) -> Response:
        return self._render()

    @extend_schema(
        summary="Change the backorder policy (managers)",
        description=(
            "Any of the writable settings. Changing `fill_strategy` or `handling_days` re-pegs the ETA of every "
            "waiting line in the same transaction."
        ),
        request=BackorderPolicySerializer,
        responses={200: BackorderPolicySerializer, **error_responses(400, 401, 403)},
    )
    def patch(self, request: Request) -> Response:
        serializer = self.get_serializer(BackorderPolicy.ensure(), data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        policy_update(changes=serializer.validated_data, acting_user=request.user)
        return self._render()
