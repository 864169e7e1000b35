"""Bulk work in the admin: ETAs for many lines with a reason, a status update now, a cancellation offer now,
and receiving purchase orders with per-line quantities and the fill preview. Each reports counts."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from backorders.models import Backorder
from backorders.services import stock_adjust_and_fill
from backorders.services.compliance import backorders_scan
from inventory.models import PurchaseOrder, StockLevel, StockMovement
from notifications.models import Notification

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order
from .factories import place
from .test_admin import action, messages_of

pytestmark = pytest.mark.django_db

BACKORDERS = "admin:backorders_backorder_changelist"
PURCHASE_ORDERS = "admin:inventory_purchaseorder_changelist"
Kind = Notification.Kind


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


@pytest.fixture
def three_waiting(main):
    ProductFactory(sku="MUG", lead_time_days=10)
    orders = [place(("MUG", 1), number=f"SO-{i}") for i in (1, 2, 3)]
    return [Backorder.objects.get(line__order=order) for order in orders]


def emails(kind: str) -> list[str]:
    return sorted(Notification.objects.filter(kind=kind).values_list("order__number", flat=True))


def test_set_eta_on_many_lines_keeps_the_reason_and_queues_eta_changed_emails(admin_client, three_waiting):
    new_eta = timezone.localdate() + timedelta(days=40)

    response = action(
        admin_client, BACKORDERS, "set_eta", three_waiting, confirm=True, eta=new_eta.isoformat(), reason="Port strike"
    )

    assert messages_of(response) == [f"ETA set to {new_eta} on 3 waiting lines."]
    for backorder in three_waiting:
        backorder.refresh_from_db()
        assert (backorder.eta, backorder.eta_source) == (new_eta, Backorder.EtaSource.MANUAL)
        assert backorder.eta_changes.latest("id").reason == "Port strike"
    pending = Notification.objects.filter(kind=Kind.ETA_CHANGED, status=Notification.Status.PENDING)
    assert pending.count() == 3
    assert all(n.scheduled_for > timezone.now() for n in pending)  # after the quiet period


def test_set_eta_reports_selected_lines_that_no_longer_wait(admin_client, main, three_waiting):
    stock_adjust_and_fill(product=three_waiting[0].product, warehouse=main, delta=1, reason="Found")
    new_eta = timezone.localdate() + timedelta(days=40)

    response = action(
        admin_client,
        BACKORDERS,
        "set_eta",
        three_waiting,
        confirm=True,
        query="?status=all",  # the default list shows only waiting lines
        eta=new_eta.isoformat(),
        reason="Late",
    )

    assert messages_of(response) == [
        f"ETA set to {new_eta} on 2 waiting lines; 1 selected line left as is (not waiting, or already at that date)."
    ]


def test_send_a_status_update_now_confirms_then_queues_one_email_per_waiting_line(admin_client, main, three_waiting):
    stock_adjust_and_fill(product=three_waiting[0].product, warehouse=main, delta=1, reason="Found")  # SO-1 filled

    page = action(admin_client, BACKORDERS, "send_status_update", three_waiting)
    assert page.status_code == 200 and "Send status updates" in page.content.decode()
    assert emails(Kind.STATUS_UPDATE) == []  # nothing before the confirmation

    response = action(admin_client, BACKORDERS, "send_status_update", three_waiting, confirm=True, query="?status=all")
    again = action(admin_client, BACKORDERS, "send_status_update", three_waiting[1:], confirm=True)

    assert messages_of(response) == ["2 status updates queued for sending; 1 line skipped: no longer waiting."]
    assert messages_of(again)[-1] == "0 status updates queued for sending; 2 lines skipped: one was already sent today."
    assert emails(Kind.STATUS_UPDATE) == ["SO-2", "SO-3"]
    email = Notification.objects.filter(kind=Kind.STATUS_UPDATE).first()
    assert "/status/" in email.body_text


def test_offer_cancellation_now_is_sent_once_and_the_daily_scan_does_not_offer_it_again(admin_client, three_waiting):
    response = action(admin_client, BACKORDERS, "offer_cancellation", three_waiting[:2], confirm=True)
    again = action(admin_client, BACKORDERS, "offer_cancellation", three_waiting, confirm=True)
    backorders_scan(as_of=timezone.localdate() + timedelta(days=20))  # every line is now due an offer

    assert messages_of(response) == ["2 cancellation offers queued for sending."]
    assert messages_of(again)[-1] == "1 cancellation offer queued for sending; 2 lines skipped: it was offered before."
    assert emails(Kind.CANCELLATION_OFFER) == ["SO-1", "SO-2", "SO-3"]


@pytest.fixture
def two_line_po(main):
    ProductFactory(sku="MUG")
    ProductFactory(sku="LAMP")
    place(("MUG", 2), number="SO-1")
    place(("MUG", 3), number="SO-2")
    place(("LAMP", 1), number="SO-3")
    return purchase_order(main, ("MUG", 6), ("LAMP", 4), number="PO-1")


def quantity_fields(po: PurchaseOrder, **units: int) -> dict[str, int]:
    return {f"receive-{line.pk}": units[line.product.sku] for line in po.lines.select_related("product")}


def test_receive_page_has_a_quantity_per_line_and_previews_the_fill_for_the_entered_quantities(
    admin_client, two_line_po
):
    first = action(admin_client, PURCHASE_ORDERS, "receive_outstanding", [two_line_po])
    preview = action(
        admin_client,
        PURCHASE_ORDERS,
        "receive_outstanding",
        [two_line_po],
        preview="yes",
        **quantity_fields(two_line_po, MUG=3, LAMP=0),
    )

    html = first.content.decode()
    for line in two_line_po.lines.all():
        assert f'name="receive-{line.pk}" value="{line.quantity}"' in html  # everything outstanding to start
    assert "Fills SO-3" in html
    updated = preview.content.decode()
    assert "Fills SO-1 (" in updated and "Fills SO-2 (" in updated and "2 still waiting" in updated
    assert "Fills SO-3" not in updated  # no LAMP received in this preview
    assert not StockMovement.objects.exists()  # previews are rolled back


def test_receive_with_per_line_quantities_receives_only_what_was_entered(admin_client, two_line_po, assert_invariants):
    response = action(
        admin_client,
        PURCHASE_ORDERS,
        "receive_outstanding",
        [two_line_po],
        confirm=True,
        **quantity_fields(two_line_po, MUG=3, LAMP=0),
    )

    assert messages_of(response) == ["PO-1: received 3 units; 1 waiting line(s) filled, 1 partly (3 units)."]
    two_line_po.refresh_from_db()
    assert two_line_po.status == PurchaseOrder.Status.PARTIALLY_RECEIVED
    assert dict(two_line_po.lines.values_list("product__sku", "received")) == {"MUG": 3, "LAMP": 0}
    assert StockLevel.objects.get(product__sku="MUG").on_hand == 3
    assert_invariants()


def test_over_receipt_and_bad_quantities_are_shown_on_their_line_and_nothing_is_received(admin_client, two_line_po):
    response = action(
        admin_client,
        PURCHASE_ORDERS,
        "receive_outstanding",
        [two_line_po],
        confirm=True,
        **{**quantity_fields(two_line_po, MUG=9, LAMP=1)},
    )
    bad = action(
        admin_client,
        PURCHASE_ORDERS,
        "receive_outstanding",
        [two_line_po],
        confirm=True,
        **{f"receive-{two_line_po.lines.get(product__sku='LAMP').pk}": "two"},
    )

    assert response.status_code == 200
    assert "Only 6 of 6 are outstanding (0 received)." in response.content.decode()
    assert "nothing was received" in response.content.decode()
    assert "Enter a whole number of units" in bad.content.decode()
    assert not StockMovement.objects.exists()
    two_line_po.refresh_from_db()
    assert two_line_po.status == PurchaseOrder.Status.ORDERED


def test_receiving_nothing_reports_it_and_a_closed_purchase_order_offers_no_inputs(admin_client, main, two_line_po):
    nothing = action(
        admin_client,
        PURCHASE_ORDERS,
        "receive_outstanding",
        [two_line_po],
        confirm=True,
        **quantity_fields(two_line_po, MUG=0, LAMP=0),
    )
    action(admin_client, PURCHASE_ORDERS, "receive_outstanding", [two_line_po], confirm=True)
    closed = action(admin_client, PURCHASE_ORDERS, "receive_outstanding", [two_line_po])

    assert messages_of(nothing) == [
        "Nothing received on PO-1 (no units entered, or nothing outstanding).",
    ]
    assert "Received: nothing can be received on it." in closed.content.decode()
    assert 'name="receive-' not in closed.content.decode()
    assert reverse(PURCHASE_ORDERS)  # the page offers only "Take me back"
