"""Orders and stock adjustments: thin callers of backorders.services (no business rules here)."""

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from backorders.services import CustomerRequest, LineRequest, order_cancel, order_place, stock_adjust_and_fill
from config.api.schema import ORDER_CONFLICT, STOCK_ALLOCATED, ErrorSerializer, error_responses
from config.api.views import NamedNotFoundMixin
from inventory.models import StockLevel, StockMovement
from orders.models import SalesOrder
from orders.selectors import order_with_lines

from .filters import OrderFilter
from .serializers import (
    OrderCancelSerializer,
    OrderCreateSerializer,
    OrderSerializer,
    StockAdjustmentResultSerializer,
    StockAdjustmentSerializer,
)


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
    orders.change_salesorder."""

    queryset = SalesOrder.objects.all()
    serializer_class = OrderSerializer
    lookup_field = "number"
    lookup_value_regex = "[^/]+"
    not_found_message = "No order numbered {value!r}."
    filterset_class = OrderFilter
    ordering_fields = ["placed_at", "number", "status"]
    action_permissions = {"cancel": ["orders.change_salesorder"]}

    def get_queryset(self) -> QuerySet[SalesOrder]:
        return order_with_lines(SalesOrder.objects.all())

    def get_serializer_class(self) -> type:
        """The input serializer of each write (what OPTIONS describes); responses are always OrderSerializer."""
        return {"create": OrderCreateSerializer, "cancel": OrderCancelSerializer}.get(self.action, OrderSerializer)

    def _render(self, order: SalesOrder, status_code: int = status.HTTP_200_OK, **kwargs) -> Response:
        fresh = self.get_queryset().get(pk=order.pk)
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
        responses={201: OrderSerializer, **error_responses(400, 401, 403), 409: ORDER_CONFLICT},
    )
    def create(self, request: Request) -> Response:
        data = self._validated(request)
        order = order_place(
            customer=CustomerRequest(**data["customer"]),
            lines=_line_requests(data["lines"]),
            ship_complete=data["ship_complete"],
            number=data.get("number"),
            ship_by=data["ship_by"],
            credit_applied=data["credit_applied"],
            acting_user=request.user,
        )
        location = reverse("order-detail", kwargs={"number": order.number}, request=request)
        return self._render(order, status.HTTP_201_CREATED, headers={"Location": location})

    @extend_schema(
        summary="Cancel an order or some of its units",
        description=(
            "Waiting units are cancelled first, then allocated ones, whose stock goes to the next waiting "
            "orders. Shipped units cannot be cancelled. Without `lines`, everything not yet shipped is cancelled."
        ),
        request=OrderCancelSerializer,
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
        return self._render(order)

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
