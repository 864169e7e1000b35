"""The backorder workflows in the admin: the queue, Pin priority, manual ETAs, purchase order receipts,
the policy, and the product availability filter / next ETA columns agreeing with the selectors."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backorders.admin import products_next_eta
from backorders.models import Backorder, BackorderPolicy, EtaChange
from backorders.selectors import Availability, availability_for, product_next_eta
from backorders.services import stock_adjust_and_fill
from backorders.services.priority import backorder_set_priority
from inventory.exceptions import InvalidInput
from inventory.models import Product, PurchaseOrder, StockLevel, Supplier
from inventory.selectors import products_with_stock
from orders.models import Customer

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from ..orders.factories import CustomerFactory
from .factories import place, waiting_queue

pytestmark = pytest.mark.django_db

BACKORDERS = "admin:backorders_backorder_changelist"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def action(client, url_name: str, name: str, objects, *, confirm: bool = False, query: str = "", **data):
    """Run an admin action from the changelist (`query`: its filters), or confirm its intermediate page."""
    post = {"action": name, ACTION_CHECKBOX_NAME: [o.pk for o in objects], **data}
    post.update({"post": "yes"} if confirm else {"index": 0})
    return client.post(reverse(url_name) + query, post)


def queue_order(product) -> list[str]:
    """Order numbers of the product's waiting lines, in the order the admin lists them (the fill order)."""
    return [
        b.line.order.number
        for b in Backorder.objects.filter(product=product, status=Backorder.Status.WAITING)
        .select_related("line__order")
        .order_by("-priority", "placed_at", "line_id")
    ]


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


def test_backorder_pages_render_and_the_policy_opens_directly(admin_client, main):
    ProductFactory(sku="MUG")
    order = place(("MUG", 2))
    backorder = Backorder.objects.get(line__order=order)

    assert admin_client.get(reverse(BACKORDERS)).status_code == 200
    response = admin_client.get(reverse("admin:backorders_backorder_change", args=[backorder.pk]))
    assert response.status_code == 200
    assert "1 of 1 waiting lines; 0 units ahead of it" in response.content.decode()
    assert admin_client.get(reverse("admin:backorders_etachange_changelist")).status_code == 200
    change = EtaChange.objects.first()
    assert admin_client.get(reverse("admin:backorders_etachange_change", args=[change.pk])).status_code == 200
    response = admin_client.get(reverse("admin:backorders_backorderpolicy_changelist"))
    assert response.status_code == 302
    policy_url = reverse("admin:backorders_backorderpolicy_change", args=[BackorderPolicy.current().pk])
    assert response.url == policy_url
    assert admin_client.get(policy_url).status_code == 200


def test_the_policy_opens_even_when_its_row_is_missing(admin_client):
    BackorderPolicy.objects.all().delete()  # e.g. a database flushed since the migration wrote it

    assert admin_client.get(reverse("admin:backorders_backorderpolicy_change", args=[1])).status_code == 200
    assert BackorderPolicy.objects.filter(pk=1).exists()  # the admin writes it; a read does not
    assert admin_client.get(reverse("admin:backorders_backorderpolicy_change", args=[2])).status_code == 302


def test_backorder_list_shows_the_waiting_lines_unless_asked_for_all(admin_client, main):
    mug = ProductFactory(sku="MUG")
    filled = place(("MUG", 1), number="SO-FILLED")
    place(("MUG", 1), number="SO-WAITING")
    stock_adjust_and_fill(product=mug, warehouse=main, delta=1, reason="Found")

    waiting = admin_client.get(reverse(BACKORDERS))
    everything = admin_client.get(reverse(BACKORDERS), {"status": "all"})

    assert [b.line.order.number for b in waiting.context["cl"].result_list] == ["SO-WAITING"]
    assert {b.line.order.number for b in everything.context["cl"].result_list} == {"SO-FILLED", "SO-WAITING"}
    assert Backorder.objects.get(line__order=filled).status == Backorder.Status.FILLED


def test_backorder_quantities_cannot_be_changed_in_the_admin(admin_client, main):
    ProductFactory(sku="MUG")
    backorder = Backorder.objects.get(line__order=place(("MUG", 2)))
    url = reverse("admin:backorders_backorder_change", args=[backorder.pk])

    assert admin_client.post(url, {"quantity": 1, "priority": 9}).status_code == 403
    assert admin_client.get(reverse("admin:backorders_backorder_add")).status_code == 403
    backorder.refresh_from_db()
    assert (backorder.quantity, backorder.priority) == (2, 0)


def test_pin_priority_asks_for_the_priority_then_moves_the_line_to_the_head_of_the_queue(
    admin_client, main, assert_invariants
):
    mug = ProductFactory(sku="MUG")
    for number in ("SO-1", "SO-2", "SO-3"):
        place(("MUG", 1), number=number)
    last = Backorder.objects.get(line__order__number="SO-3")

    page = action(admin_client, BACKORDERS, "pin_priority", [last])
    assert page.status_code == 200
    assert "SO-3" in page.content.decode()
    assert queue_order(mug) == ["SO-1", "SO-2", "SO-3"]  # nothing changed yet

    response = action(admin_client, BACKORDERS, "pin_priority", [last], confirm=True, priority=5)

    assert response.status_code == 302
    assert messages_of(response) == ["Pinned 1 waiting line at priority 5."]
    assert queue_order(mug) == ["SO-3", "SO-1", "SO-2"]
    _, fill = stock_adjust_and_fill(product=mug, warehouse=main, delta=1, reason="Delivery")
    assert [entry.order_number for entry in fill.entries] == ["SO-3"]
    assert_invariants()


def test_pin_priority_with_a_bad_priority_shows_the_error_and_changes_nothing(admin_client, main):
    ProductFactory(sku="MUG")
    backorder = Backorder.objects.get(line__order=place(("MUG", 1)))

    response = action(admin_client, BACKORDERS, "pin_priority", [backorder], confirm=True, priority="soon")

    assert response.status_code == 200
    assert "priority" in response.context["adminform"].form.errors
    backorder.refresh_from_db()
    assert backorder.priority == 0


def test_pin_priority_leaves_lines_that_no_longer_wait_and_says_so(admin_client, main):
    mug = ProductFactory(sku="MUG")
    filled = Backorder.objects.get(line__order=place(("MUG", 1)))
    waiting = Backorder.objects.get(line__order=place(("MUG", 1)))
    stock_adjust_and_fill(product=mug, warehouse=main, delta=1, reason="Found")

    response = action(
        admin_client, BACKORDERS, "pin_priority", [filled, waiting], confirm=True, priority=3, query="?status=all"
    )

    assert messages_of(response) == ["Pinned 1 waiting line at priority 3; 1 selected line not waiting, left as is."]
    filled.refresh_from_db()
    waiting.refresh_from_db()
    assert (filled.priority, waiting.priority) == (0, 3)


def test_backorder_set_priority_re_pegs_the_etas_of_the_queue(main):
    mug = ProductFactory(sku="MUG", lead_time_days=30)
    first = Backorder.objects.get(line__order=place(("MUG", 1)))
    second = Backorder.objects.get(line__order=place(("MUG", 1)))
    po = purchase_order(main, ("MUG", 1), days=5)  # covers the head of the queue only
    first.refresh_from_db()
    assert first.eta_source == Backorder.EtaSource.PURCHASE_ORDER

    changed = backorder_set_priority(backorders=[second], priority=1, acting_user=None)

    first.refresh_from_db()
    second.refresh_from_db()
    assert changed == 1
    assert second.eta_source == Backorder.EtaSource.PURCHASE_ORDER
    assert second.eta == po.expected_date + timedelta(days=BackorderPolicy.current().handling_days)
    assert first.eta_source == Backorder.EtaSource.LEAD_TIME
    assert product_next_eta(product=mug, available=0) >= first.eta


def test_backorder_set_priority_refuses_a_priority_out_of_range(main):
    ProductFactory(sku="MUG")
    backorder = Backorder.objects.get(line__order=place(("MUG", 1)))

    with pytest.raises(InvalidInput):
        backorder_set_priority(backorders=[backorder], priority=10**9, acting_user=None)

    backorder.refresh_from_db()
    assert backorder.priority == 0


def test_set_eta_records_a_manual_eta_with_its_reason(admin_client, main):
    ProductFactory(sku="MUG", lead_time_days=10)
    backorder = Backorder.objects.get(line__order=place(("MUG", 1)))
    new_eta = timezone.localdate() + timedelta(days=3)

    page = action(admin_client, BACKORDERS, "set_eta", [backorder])
    response = action(
        admin_client, BACKORDERS, "set_eta", [backorder], confirm=True, eta=new_eta.isoformat(), reason="Courier"
    )

    assert page.status_code == 200
    assert messages_of(response) == [f"ETA set to {new_eta} on 1 waiting line."]
    backorder.refresh_from_db()
    assert (backorder.eta, backorder.eta_source) == (new_eta, Backorder.EtaSource.MANUAL)
    change = backorder.eta_changes.latest("id")
    assert (change.new_eta, change.reason, change.user.username) == (new_eta, "Courier", "admin")


def test_set_eta_in_the_past_is_refused_and_changes_nothing(admin_client, main):
    ProductFactory(sku="MUG", lead_time_days=10)
    backorder = Backorder.objects.get(line__order=place(("MUG", 1)))
    before = (backorder.eta, backorder.eta_source)

    response = action(
        admin_client,
        BACKORDERS,
        "set_eta",
        [backorder],
        confirm=True,
        eta=(timezone.localdate() - timedelta(days=1)).isoformat(),
        reason="Typo",
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["eta"] == ["Must be today or later."]
    backorder.refresh_from_db()
    assert (backorder.eta, backorder.eta_source) == before


def test_backorders_changelist_query_count_does_not_grow_with_rows(admin_client, main):
    def changelist_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client.get(reverse(BACKORDERS)).status_code == 200
        return len(queries)

    for i in range(5):
        place((ProductFactory(sku=f"A{i}").sku, 1), customer=CustomerFactory(tier=Customer.Tier.VIP))
    few = changelist_queries()
    for i in range(5, 10):
        waiting_queue(ProductFactory(sku=f"A{i}"), 5)

    assert changelist_queries() == few


def test_product_availability_filter_agrees_with_availability_for(admin_client, main):
    stock(ProductFactory(sku="PLENTY", reorder_point=5), main, 50)
    stock(ProductFactory(sku="FEW", reorder_point=2, safety_stock=5), main, 4)
    stock(ProductFactory(sku="EDGE", reorder_point=6), main, 6)
    ProductFactory(sku="WAIT")
    ProductFactory(sku="NOPE", backorders_allowed=False)
    stock(ProductFactory(sku="LAST", discontinued=True, reorder_point=5), main, 2)
    stock(ProductFactory(sku="SOLD", discontinued=True), main, 1)
    place(("SOLD", 1))
    expected = {p.sku: availability_for(product=p, available=p.total_available) for p in products_with_stock()}

    for availability in Availability.values:
        response = admin_client.get(reverse("admin:inventory_product_changelist"), {"availability": availability})
        shown = {p.sku for p in response.context["cl"].result_list}
        assert shown == {sku for sku, value in expected.items() if value == availability}, availability
    assert set(expected.values()) == set(Availability.values)


def test_product_changelist_next_eta_matches_product_next_eta(admin_client, main):
    supplier = Supplier.objects.create(name="Acme", lead_time_days=9)
    ProductFactory(sku="LEAD", lead_time_days=20)
    ProductFactory(sku="SUPPLIER", lead_time_days=None, supplier=supplier)
    ProductFactory(sku="UNKNOWN", lead_time_days=None)
    ProductFactory(sku="PO", lead_time_days=40)
    stock(ProductFactory(sku="STOCKED"), main, 3)
    place(("LEAD", 2), ("PO", 3))
    purchase_order(main, ("PO", 5), days=12)

    response = admin_client.get(reverse("admin:inventory_product_changelist"))

    rows = {p.sku: p for p in response.context["cl"].result_list}
    for product in products_with_stock(Product.objects.all()):
        expected = product_next_eta(product=product, available=product.total_available)
        assert rows[product.sku].next_eta_for_list == expected, product.sku
    assert rows["UNKNOWN"].next_eta_for_list is None
    assert products_next_eta([]) == {}


def test_receive_previews_who_will_be_served_then_receives_and_fills(admin_client, main, assert_invariants):
    mug = ProductFactory(sku="MUG")
    place(("MUG", 2), number="SO-1")
    place(("MUG", 3), number="SO-2")
    po = purchase_order(main, ("MUG", 4), number="PO-1")
    url = "admin:inventory_purchaseorder_changelist"

    preview = action(admin_client, url, "receive_outstanding", [po])

    assert preview.status_code == 200
    content = preview.content.decode()
    assert "Fills SO-1" in content and "Fills SO-2" in content and "1 still waiting" in content
    assert not StockLevel.objects.filter(product=mug).exists()  # the preview was rolled back
    po.refresh_from_db()
    assert po.status == PurchaseOrder.Status.ORDERED

    response = action(admin_client, url, "receive_outstanding", [po], confirm=True)

    po.refresh_from_db()
    assert po.status == PurchaseOrder.Status.RECEIVED
    assert StockLevel.objects.filter(product=mug).values_list("on_hand", "allocated").get() == (4, 4)
    assert messages_of(response) == ["PO-1: received 4 units; 1 waiting line(s) filled, 1 partly (4 units)."]
    assert_invariants()


def test_cancel_purchase_order_confirms_then_cancels(admin_client, main):
    ProductFactory(sku="MUG")
    po = purchase_order(main, ("MUG", 4), number="PO-1")
    url = "admin:inventory_purchaseorder_changelist"

    assert action(admin_client, url, "cancel_purchase_orders", [po]).status_code == 200
    response = action(admin_client, url, "cancel_purchase_orders", [po], confirm=True)

    po.refresh_from_db()
    assert po.status == PurchaseOrder.Status.CANCELLED
    assert messages_of(response) == [
        "1 purchase order cancelled (PO-1); the ETAs of their waiting lines were re-pegged."
    ]


def test_changing_the_handling_days_in_the_policy_moves_every_waiting_eta(admin_client, main):
    ProductFactory(sku="MUG", lead_time_days=10)
    backorder = Backorder.objects.get(line__order=place(("MUG", 1)))
    policy = BackorderPolicy.current()
    before = backorder.eta
    data = {
        field: getattr(policy, field)
        for field in (
            "fill_strategy",
            "compliance_profile",
            "rolling_backorder_days",
            "eta_change_threshold_days",
            "eta_quiet_minutes",
            "cancellation_offer_days",
            "status_update_days",
            "status_link_days",
            "coupon_code",
        )
    }

    response = admin_client.post(
        reverse("admin:backorders_backorderpolicy_change", args=[policy.pk]),
        {**data, "handling_days": policy.handling_days + 2},
    )

    assert response.status_code == 302
    backorder.refresh_from_db()
    assert backorder.eta == before + timedelta(days=2)
    assert BackorderPolicy.current().updated_by.username == "admin"


def test_changing_a_products_lead_time_in_the_admin_moves_its_waiting_etas(admin_client, main):
    mug = ProductFactory(sku="MUG", name="Mug", lead_time_days=10)
    backorder = Backorder.objects.get(line__order=place(("MUG", 1)))
    before = backorder.eta

    response = admin_client.post(
        reverse("admin:inventory_product_change", args=[mug.pk]),
        {
            "name": "Mug",
            "backorders_allowed": "on",
            "lead_time_days": 15,
            "safety_stock": 0,
            "reorder_point": 0,
            "stock_levels-TOTAL_FORMS": 0,
            "stock_levels-INITIAL_FORMS": 0,
        },
    )

    assert response.status_code == 302
    backorder.refresh_from_db()
    assert backorder.eta == before + timedelta(days=5)


def test_overdue_and_age_filters_pick_the_right_lines(admin_client, main):
    ProductFactory(sku="OLD", lead_time_days=5)
    ProductFactory(sku="NEW", lead_time_days=5)
    old = place(("OLD", 1), placed_at=timezone.now() - timedelta(days=20))
    new = place(("NEW", 1))
    Backorder.objects.filter(line__order=old).update(eta=timezone.localdate() - timedelta(days=1))
    url = reverse("admin:backorders_backorder_changelist")

    overdue = admin_client.get(url, {"overdue": "yes"}).content.decode()
    on_time = admin_client.get(url, {"overdue": "no"}).content.decode()
    aged = admin_client.get(url, {"age": "15-30"}).content.decode()
    fresh = admin_client.get(url, {"age": "0-7"}).content.decode()

    assert old.number in overdue and new.number not in overdue
    assert new.number in on_time and old.number not in on_time
    assert old.number in aged and new.number not in aged
    assert new.number in fresh and old.number not in fresh


def test_compliance_clock_and_timeline_pages_show_the_decisions(admin_client, main):
    from backorders.models import ComplianceClock
    from backorders.services.compliance import backorders_scan

    ProductFactory(sku="SLOW", lead_time_days=60)
    order = place(("SLOW", 1))
    backorders_scan(as_of=timezone.localdate())
    clock = ComplianceClock.objects.get(line__order=order)

    listing = admin_client.get(reverse("admin:backorders_complianceclock_changelist"))
    page = admin_client.get(reverse("admin:backorders_complianceclock_change", args=[clock.pk]))
    backorder_page = admin_client.get(
        reverse("admin:backorders_backorder_change", args=[Backorder.objects.get(line__order=order).pk])
    )

    assert listing.status_code == page.status_code == backorder_page.status_code == 200
    assert order.number in listing.content.decode()
    for content in (page.content.decode(), backorder_page.content.decode()):
        assert "Clock started" in content and "Delay notice sent" in content
    assert admin_client.get(reverse("admin:backorders_complianceevent_changelist")).status_code == 200


def test_shipping_from_the_admin_emits_order_shipped_to_webhooks(admin_client, main):
    from notifications.models import WebhookDelivery, WebhookEndpoint

    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s3cret", event_types=["order.shipped"])
    product = ProductFactory(sku="SHIPME")
    stock(product, main, 2)
    order = place(("SHIPME", 2))

    action(admin_client, "admin:orders_salesorder_changelist", "ship_allocated", [order])

    [delivery] = WebhookDelivery.objects.filter(event_type="order.shipped")
    assert delivery.payload["data"]["order"]["number"] == order.number
