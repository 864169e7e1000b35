"""The webhook events the back office emits, and their `data` shapes (docs/WEBHOOKS.md shows examples).

Each is written in the transaction of the change that causes it (notifications.webhooks.webhook_emit_many):

- backorder.created, backorder.filled, backorder.cancelled: {"backorder": <backorder>}, one event per backorder,
  where <backorder> has the fields of GET /api/v1/backorders/{id}/ plus closed_at.
- backorder.eta_changed: {"backorder": <backorder>, "previous_eta", "previous_eta_source", "reason"}.
- order.shipped: {"order": {number, status, customer}, "shipment": {id, shipped_at, lines: [{sku, quantity,
  warehouse}]}}.

When no active endpoint wants an event, emitting costs one query and builds nothing.
"""

from collections.abc import Iterable, Mapping, Sequence

from notifications.models import WebhookEndpoint
from notifications.webhooks import webhook_emit_many, webhook_endpoints_for
from orders.models import Shipment, ShipmentLine

from ..models import Backorder

Event = WebhookEndpoint.Event


def backorder_data(backorder: Backorder) -> dict[str, object]:
    """A backorder as the API shows it (plus closed_at). Expects select_related("line__order__customer", "product")."""
    order = backorder.line.order
    return {
        "id": backorder.pk,
        "order": order.number,
        "sku": backorder.product.sku,
        "customer": order.customer.email,
        "quantity": backorder.quantity,
        "original_quantity": backorder.original_quantity,
        "status": backorder.status,
        "eta": backorder.eta,
        "eta_source": backorder.eta_source,
        "priority": backorder.priority,
        "created_at": backorder.created_at,
        "placed_at": backorder.placed_at,
        "closed_at": backorder.closed_at,
        "ship_by": order.ship_by,
    }


def backorders_emit(
    *,
    event_type: str,
    backorder_ids: Iterable[int],
    extra: Mapping[int, Mapping[str, object]] | None = None,
    endpoints: Sequence[WebhookEndpoint] | None = None,
) -> int:
    """One `event_type` event per backorder (as they are now); `extra` adds fields to a backorder's event data.
    `endpoints`: the subscribers, if the caller already asked. Returns how many events were emitted (0 when no
    endpoint wants them: then nothing is read or written)."""
    ids = sorted(set(backorder_ids))
    if not ids:
        return 0
    if endpoints is None:
        endpoints = webhook_endpoints_for(event_type)
    if not endpoints:
        return 0
    backorders = Backorder.objects.filter(pk__in=ids).select_related("line__order__customer", "product").order_by("pk")
    extra = extra or {}
    events = [{"backorder": backorder_data(b), **extra.get(b.pk, {})} for b in backorders]
    return len(webhook_emit_many(event_type=event_type, events=events, endpoints=endpoints))


def order_shipped_emit(*, shipment: Shipment) -> bool:
    """An order.shipped event for this shipment; False when no endpoint wants it."""
    endpoints = webhook_endpoints_for(Event.ORDER_SHIPPED)
    if not endpoints:
        return False
    order = shipment.order
    lines = ShipmentLine.objects.filter(shipment=shipment).select_related("line__product", "stock_level__warehouse")
    data = {
        "order": {"number": order.number, "status": order.status, "customer": order.customer.email},
        "shipment": {
            "id": shipment.pk,
            "shipped_at": shipment.shipped_at,
            "lines": [
                {"sku": sl.line.product.sku, "quantity": sl.quantity, "warehouse": sl.stock_level.warehouse.code}
                for sl in lines.order_by("pk")
            ],
        },
    }
    return bool(webhook_emit_many(event_type=Event.ORDER_SHIPPED, events=[data], endpoints=endpoints))
