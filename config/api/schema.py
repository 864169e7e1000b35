"""OpenAPI pieces shared by every endpoint: the error bodies and the standard error responses."""

from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """{code, detail, fields?}: every API error. `fields` maps a field path ("lines[1].sku") to messages."""

    def get_fields(self) -> dict[str, serializers.Field]:
        # Declared here, not as class attributes: `fields` is a Serializer property.
        return {
            "code": serializers.CharField(help_text="Machine-readable error code, e.g. invalid, not_found."),
            "detail": serializers.CharField(help_text="What went wrong and what to do, for a human."),
            "fields": serializers.DictField(
                child=serializers.ListField(child=serializers.CharField()),
                required=False,
                help_text='Field path -> messages, e.g. {"lines[1].sku": ["No product with SKU \'X\'."]}.',
            ),
        }


class ShortageSerializer(serializers.Serializer):
    sku = serializers.CharField()
    requested = serializers.IntegerField()
    available = serializers.IntegerField()


class OrderConflictErrorSerializer(serializers.Serializer):
    """409 when an order cannot be taken. Nothing was written.

    `insufficient_stock`: a SKU is short and cannot be backordered (sku, available, shortages).
    `duplicate_order_number`: the given number is taken (fields.number).
    `idempotency_request_in_progress`: a request with the same Idempotency-Key is still running.
    """

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "code": serializers.ChoiceField(
                choices=["insufficient_stock", "duplicate_order_number", "idempotency_request_in_progress"]
            ),
            "detail": serializers.CharField(),
            "sku": serializers.CharField(required=False, help_text="insufficient_stock: the first short SKU."),
            "available": serializers.IntegerField(
                required=False, help_text="insufficient_stock: units of that SKU available now."
            ),
            "shortages": ShortageSerializer(
                many=True, required=False, help_text="insufficient_stock: every short SKU."
            ),
            "fields": serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False),
        }


class StockAllocatedErrorSerializer(serializers.Serializer):
    """409 when a stock change would take on hand below what is allocated to orders. Nothing was written."""

    code = serializers.ChoiceField(choices=["stock_allocated"])
    detail = serializers.CharField()
    sku = serializers.CharField()
    warehouse = serializers.CharField()
    on_hand = serializers.IntegerField()
    allocated = serializers.IntegerField()


_DESCRIPTIONS = {
    400: "Invalid input; `fields` names each bad field path. Nothing was changed.",
    401: "No or invalid credentials (send `Authorization: Token <key>`).",
    403: "Authenticated, but without the Django model permission this endpoint needs.",
    404: "No such object.",
}


def error_responses(*statuses: int) -> dict[int, OpenApiResponse]:
    """{status: OpenApiResponse(Error)} for the standard error statuses of an operation."""
    return {status: OpenApiResponse(ErrorSerializer, description=_DESCRIPTIONS[status]) for status in statuses}


def error_response(description: str) -> OpenApiResponse:
    """An {code, detail, fields?} error response with its own description (the codes it can carry, when)."""
    return OpenApiResponse(ErrorSerializer, description=description)


ORDER_CONFLICT = OpenApiResponse(
    OrderConflictErrorSerializer,
    description=(
        "Not orderable: `insufficient_stock` (a SKU is short and backorders are not possible; `shortages` "
        "lists every short SKU), or `duplicate_order_number`; or `idempotency_request_in_progress` (a request "
        "with the same Idempotency-Key is still running). Nothing was written."
    ),
)

STOCK_ALLOCATED = OpenApiResponse(
    StockAllocatedErrorSerializer,
    description="`stock_allocated`: on hand would drop below the units allocated to orders. Nothing was written.",
)
