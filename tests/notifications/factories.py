"""Orders, outbox rows and template contexts for the notification tests.

Orders and lines are written directly (not through order placement), so no other app's emails appear in the
outbox: every row a test sees is one it made.
"""

from datetime import date

import factory
from django.utils import timezone

from notifications.models import Notification
from notifications.services import notification_create
from orders.models import OrderLine, SalesOrder

from ..inventory.factories import ProductFactory
from ..orders.factories import CustomerFactory

STATUS_URL = "https://shop.example/status/signed-token-123/"
ETA = date(2026, 12, 8)  # a Tuesday: "Tue 8 Dec 2026"


class SalesOrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SalesOrder

    number = factory.Sequence(lambda n: f"N-{n:05d}")
    customer = factory.SubFactory(CustomerFactory)
    status = SalesOrder.Status.BACKORDERED


class OrderLineFactory(factory.django.DjangoModelFactory):
    """A line whose whole quantity waits (quantity == backordered keeps the line's sum constraint)."""

    class Meta:
        model = OrderLine

    order = factory.SubFactory(SalesOrderFactory)
    product = factory.SubFactory(ProductFactory)
    quantity = 2
    backordered = factory.SelfAttribute("quantity")


class NotificationFactory(factory.django.DjangoModelFactory):
    """A row written directly (no rendering, nothing enqueued): for admin, API and sending tests."""

    class Meta:
        model = Notification

    order = factory.SubFactory(SalesOrderFactory)
    customer = factory.SelfAttribute("order.customer")
    kind = Notification.Kind.STATUS_UPDATE
    dedupe_key = factory.Sequence(lambda n: f"test:{n}")
    to_email = factory.SelfAttribute("customer.email")
    subject = factory.Sequence(lambda n: f"Your order: update {n}")
    body_text = "Hello,\n\nAn update.\n"
    body_html = "<p>Hello,</p><p>An update.</p>"
    scheduled_for = factory.LazyFunction(timezone.now)


def line_row(line: OrderLine, eta: date | None = ETA) -> dict[str, object]:
    """The `lines` item the backorders app passes for an order line."""
    return {
        "sku": line.product.sku,
        "name": line.product.name,
        "quantity": line.quantity,
        "backordered": line.backordered,
        "eta": eta,
    }


def context_for(kind: str, line: OrderLine, **overrides: object) -> dict[str, object]:
    """A complete context for `kind` (templates/notifications/README.md), about `line`; overrides win."""
    base: dict[str, object] = {"status_url": STATUS_URL, "lines": [line_row(line)]}
    extra: dict[str, dict[str, object]] = {
        Notification.Kind.BACKORDER_CREATED: {},
        Notification.Kind.ETA_CHANGED: {"previous_eta": date(2026, 12, 1), "new_eta": ETA},
        Notification.Kind.DELAY_NOTICE: {
            "ship_by": date(2026, 12, 1),
            "revised_date": date(2026, 12, 20),
            "needs_consent": False,
            "profile": "us_ftc",
        },
        Notification.Kind.RENEWED_DELAY_NOTICE: {
            "ship_by": date(2026, 12, 1),
            "previous_revised_date": date(2026, 12, 20),
            "revised_date": date(2027, 1, 15),
            "needs_consent": True,
            "consent_deadline": date(2026, 12, 20),
            "profile": "us_ftc",
        },
        Notification.Kind.CANCELLATION_OFFER: {
            "days_waiting": 14,
            "substitutes": [{"sku": "MUG-BLUE", "name": "Blue mug"}],
            "coupon_code": "SORRY-10",
        },
        Notification.Kind.STATUS_UPDATE: {"days_waiting": 21},
        Notification.Kind.BACKORDER_FILLED: {},
        Notification.Kind.CANCELLATION_CONFIRMED: {
            "refund_due_by": date(2026, 12, 10),
            "cancelled_lines": [{"sku": line.product.sku, "name": line.product.name, "quantity": line.quantity}],
        },
    }
    return {**base, **extra[kind], **overrides}


def create_notification(
    kind: str = Notification.Kind.STATUS_UPDATE,
    *,
    line: OrderLine | None = None,
    dedupe_key: str | None = None,
    status_url: str = STATUS_URL,
    **kwargs: object,
) -> Notification | None:
    """notification_create for `line` (a new waiting line by default) with a complete context."""
    line = line or OrderLineFactory()
    return notification_create(
        kind=kind,
        customer=line.order.customer,
        order=line.order,
        line=line,
        dedupe_key=dedupe_key or f"{kind}:{line.pk}",
        context=context_for(kind, line, status_url=status_url),
        **kwargs,
    )
