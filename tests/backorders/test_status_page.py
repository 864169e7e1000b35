"""The customer status page: signed links, read-only GETs, confirmation POSTs that act."""

import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format

from backorders.compliance import add_working_days
from backorders.models import Backorder, ComplianceClock, ComplianceEvent
from backorders.services import stock_adjust_and_fill
from backorders.services.cancellation import order_line_units
from backorders.services.compliance import backorders_scan, clock_record_express_consent
from backorders.services.substitution import customer_cancel_waiting, substitute_accept
from backorders.status_links import status_token
from inventory.exceptions import Conflict
from inventory.models import StockLevel
from notifications.models import Notification
from orders.models import Allocation, OrderLine, SalesOrder

from ..concurrency import run_concurrently
from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .factories import place, waiting_queue

pytestmark = pytest.mark.django_db

CUSTOMER_IP = "203.0.113.7"


def day(value) -> str:
    return date_format(value, "D j M Y")


def url(order: SalesOrder, name: str = "status-page", *args: object, token: str | None = None) -> str:
    return reverse(name, args=[token or status_token(order), *args])


def units(order: SalesOrder, sku: str) -> dict[str, int]:
    return order_line_units(order)[sku]


def snapshot() -> dict[str, object]:
    """Everything a status page action could change."""
    return {
        "lines": sorted(OrderLine.objects.values_list("pk", "allocated", "shipped", "backordered", "cancelled")),
        "levels": sorted(StockLevel.objects.values_list("pk", "on_hand", "allocated")),
        "backorders": sorted(Backorder.objects.values_list("pk", "status", "quantity")),
        "allocations": sorted(Allocation.objects.values_list("pk", "line_id", "quantity")),
        "orders": sorted(SalesOrder.objects.values_list("pk", "status")),
        "clocks": sorted(ComplianceClock.objects.values_list("pk", "state", "consent")),
        "events": ComplianceEvent.objects.count(),
        "notifications": Notification.objects.count(),
    }


def confirm(client: Client, path: str, **extra: object):
    """Open the confirmation page (GET), then submit its form (POST) with the CSRF token the page set."""
    page = client.get(path)
    assert page.status_code == 200, page.content.decode()
    assert b'method="post"' in page.content and b"csrfmiddlewaretoken" in page.content
    return client.post(path, {"csrfmiddlewaretoken": client.cookies["csrftoken"].value}, **extra)


def csrf(client: Client, order: SalesOrder) -> dict[str, str]:
    """A CSRF token for the client, from a confirmation page of one of its orders."""
    assert client.get(url(order, "status-keep-waiting")).status_code == 200
    return {"csrfmiddlewaretoken": client.cookies["csrftoken"].value}


def messages_after(client: Client, response) -> str:
    assert response.status_code == 303
    page = client.get(response["Location"])
    assert page.status_code == 200
    return page.content.decode()


@pytest.fixture
def shop():
    """MUG: 2 in stock, lead time 10 days, CUP (5 in stock) listed as its substitute. TEA: nothing, no lead time."""
    warehouse = WarehouseFactory(code="MAIN", priority=1)
    mug = ProductFactory(sku="MUG", name="Enamel mug", lead_time_days=10)
    cup = ProductFactory(sku="CUP", name="Steel cup")
    tea = ProductFactory(sku="TEA", name="Green tea", lead_time_days=None)
    mug.substitutes.add(cup)
    stock(mug, warehouse, 2)
    stock(cup, warehouse, 5)
    return SimpleNamespace(warehouse=warehouse, mug=mug, cup=cup, tea=tea)


@pytest.fixture
def client():
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=CUSTOMER_IP)


def test_status_page_shows_lines_etas_substitutes_and_actions(shop, client):
    order = place(("MUG", 5), ("TEA", 1))
    mug_eta = timezone.localdate() + timedelta(days=10 + 1)  # lead time + handling
    assert Backorder.objects.get(line__order=order, product=shop.mug).eta == mug_eta

    token = status_token(order)
    response = client.get(url(order, token=token))

    assert response.status_code == 200
    html = response.content.decode()
    assert f"Order {order.number}" in html
    assert f"Placed on {day(timezone.localtime(order.placed_at))}" in html
    assert settings.SHOP_NAME in html and settings.SHOP_SUPPORT_EMAIL in html
    assert "Enamel mug" in html and "Green tea" in html
    assert "Ordered 5" in html and "Allocated, ready to ship 2" in html and "Backordered 3" in html
    assert f"Expected to ship: <strong>{day(mug_eta)}</strong>" in html
    assert "Expected to ship: <strong>date unknown</strong>" in html
    assert url(order, "status-keep-waiting", token=token) in html and "Keep waiting" in html
    assert url(order, "status-cancel", token=token) in html and "Cancel backordered items" in html
    assert url(order, "status-cancel-order", token=token) in html
    mug_line = order.lines.get(product=shop.mug)
    assert url(order, "status-substitute", mug_line.pk, "CUP", token=token) in html and "Steel cup" in html
    assert "/static/admin/" not in html and "<script" not in html and "https://" not in html
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "same-origin"  # no-referrer makes browsers fail the CSRF origin check


def test_substitutes_are_offered_only_when_in_stock_for_every_waiting_unit(shop, client):
    order = place(("MUG", 8))  # 6 waiting, CUP has only 5

    html = client.get(url(order)).content.decode()

    assert "Backordered 6" in html
    assert "Take a substitute" not in html and "Steel cup" not in html


def test_page_words_the_delay_notice_and_keep_waiting_records_express_consent_with_the_ip(
    shop, client, assert_invariants
):
    today = timezone.localdate()
    order = place(("TEA", 2), ship_by=today + timedelta(days=1))
    backorders_scan(as_of=today)  # no ETA: a delay notice that needs express consent by T + 30
    clock = ComplianceClock.objects.get(line__order=order)
    assert (clock.notices_sent, clock.consent_deadline) == (1, today + timedelta(days=31))

    html = client.get(url(order)).content.decode()
    assert f"We need your answer by {day(clock.consent_deadline)} to keep this item." in html
    assert "We need your answer: please tell us below" in html

    response = confirm(client, url(order, "status-keep-waiting"))

    html = messages_after(client, response)
    assert "Thank you: your 2 items on backorder stay on order" in html
    assert "You agreed to wait until we can ship this item." in html
    clock.refresh_from_db()
    assert (clock.consent, clock.consent_deadline, clock.indefinite_consent) == ("express", None, True)
    event = ComplianceEvent.objects.get(line__order=order, kind=ComplianceEvent.Kind.CONSENT_EXPRESS)
    assert (event.channel, event.ip_address, event.on) == ("status_page", CUSTOMER_IP, today)
    assert units(order, "TEA")["backordered"] == 2
    assert_invariants()


def test_keep_waiting_before_any_notice_records_consent_on_a_new_clock(shop, client, assert_invariants):
    order = place(("MUG", 3))

    path = url(order, "status-keep-waiting")
    response = confirm(client, path)

    assert response.status_code == 303 and response["Location"] == path.removesuffix("keep-waiting/")
    clock = ComplianceClock.objects.get(line__order=order)
    assert clock.consent == ComplianceClock.Consent.EXPRESS
    assert list(ComplianceEvent.objects.filter(line__order=order).values_list("kind", "channel", "ip_address")) == [
        ("clock_started", "system", None),
        ("consent_express", "status_page", CUSTOMER_IP),
    ]
    assert units(order, "MUG") == {"quantity": 3, "allocated": 2, "backordered": 1, "shipped": 0, "cancelled": 0}
    assert_invariants()


def test_get_of_every_page_changes_nothing(shop, client):
    order = place(("MUG", 5), ("TEA", 1))
    line = order.lines.get(product=shop.mug)
    before = snapshot()

    for path in (
        url(order),
        url(order, "status-keep-waiting"),
        url(order, "status-cancel"),
        url(order, "status-cancel-order"),
        url(order, "status-substitute", line.pk, "CUP"),
    ):
        assert client.get(path).status_code == 200, path
        assert client.head(path).status_code == 200, path

    assert snapshot() == before


def test_post_without_the_csrf_token_is_refused_and_changes_nothing(shop, client):
    order = place(("MUG", 5))
    line = order.lines.get(product=shop.mug)
    before = snapshot()

    for path in (
        url(order, "status-keep-waiting"),
        url(order, "status-cancel"),
        url(order, "status-cancel-order"),
        url(order, "status-substitute", line.pk, "CUP"),
    ):
        assert client.post(path).status_code == 403, path

    assert snapshot() == before


def test_cancel_backordered_items_cancels_only_waiting_units_and_the_next_customer_is_served_first(
    shop, client, assert_invariants
):
    today = timezone.localdate()
    first = place(("MUG", 5))  # 2 allocated, 3 waiting
    second = place(("MUG", 2))  # 2 waiting, behind the first
    assert units(first, "MUG") == {"quantity": 5, "allocated": 2, "backordered": 3, "shipped": 0, "cancelled": 0}

    response = confirm(client, url(first, "status-cancel"))

    refund_due = add_working_days(today, 7, country="US")
    html = messages_after(client, response)
    assert f"3 backordered items cancelled. Your refund of these items is due by {day(refund_due)}." in html
    assert f"Your refund for the cancelled units is due by {day(refund_due)}." in html
    assert units(first, "MUG") == {"quantity": 5, "allocated": 2, "backordered": 0, "shipped": 0, "cancelled": 3}
    assert Backorder.objects.get(line__order=first).status == Backorder.Status.CANCELLED
    clock = ComplianceClock.objects.get(line__order=first)
    assert (clock.state, clock.refund_due_by, clock.refund_units) == ("cancelled", refund_due, 3)
    event = ComplianceEvent.objects.get(line__order=first, kind=ComplianceEvent.Kind.CANCELLED_BY_CUSTOMER)
    assert (event.channel, event.ip_address, event.details["units"]) == ("status_page", CUSTOMER_IP, 3)
    assert Notification.objects.filter(order=first, kind=Notification.Kind.CANCELLATION_CONFIRMED).count() == 1
    assert StockLevel.objects.get(product=shop.mug).allocated == 2  # the allocated units still ship
    assert_invariants()

    # Stock arrives: the second order is next in the queue now.
    _, fill = stock_adjust_and_fill(product=shop.mug, warehouse=shop.warehouse, delta=3, reason="Delivery")
    assert fill.units == 2
    assert units(second, "MUG") == {"quantity": 2, "allocated": 2, "backordered": 0, "shipped": 0, "cancelled": 0}
    assert units(first, "MUG")["allocated"] == 2
    assert_invariants()

    # A second submit of the same form cancels nothing more (the allocated units are left alone).
    before = snapshot()
    response = client.post(url(first, "status-cancel"), {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    assert "nothing was cancelled" in messages_after(client, response)
    assert snapshot() == before


def test_cancel_the_whole_order_releases_allocated_stock_to_the_next_lines_in_the_queue(
    shop, client, assert_invariants
):
    today = timezone.localdate()
    first = place(("MUG", 5))  # 2 allocated (all the stock), 3 waiting
    second, third = place(("MUG", 1)), place(("MUG", 1))

    response = confirm(client, url(first, "status-cancel-order"))

    refund_due = add_working_days(today, 7, country="US")
    html = messages_after(client, response)
    assert f"5 items cancelled. Your refund of these items is due by {day(refund_due)}." in html
    assert units(first, "MUG") == {"quantity": 5, "allocated": 0, "backordered": 0, "shipped": 0, "cancelled": 5}
    assert SalesOrder.objects.get(pk=first.pk).status == SalesOrder.Status.CANCELLED
    for later in (second, third):  # the 2 released units refilled the next two waiting lines
        assert units(later, "MUG") == {"quantity": 1, "allocated": 1, "backordered": 0, "shipped": 0, "cancelled": 0}
        assert SalesOrder.objects.get(pk=later.pk).status == SalesOrder.Status.ALLOCATED
    assert StockLevel.objects.get(product=shop.mug).allocated == 2
    clock = ComplianceClock.objects.get(line__order=first)
    assert (clock.state, clock.refund_due_by, clock.refund_units) == ("cancelled", refund_due, 5)
    events = ComplianceEvent.objects.filter(line__order=first, channel="status_page")
    assert sorted(events.values_list("kind", "details__units")) == [
        ("cancelled_by_customer", 2),
        ("cancelled_by_customer", 3),
        ("refund_due", 2),
        ("refund_due", 3),
    ]
    confirmations = Notification.objects.filter(order=first, kind=Notification.Kind.CANCELLATION_CONFIRMED)
    assert confirmations.count() == 2  # one for the waiting units (per line), one for the allocated ones
    allocated_part = confirmations.get(dedupe_key=f"cancellation_confirmed:order:{first.pk}")
    assert "Enamel mug (MUG): 2 cancelled" in allocated_part.body_text
    assert f"due by {day(refund_due)}" in allocated_part.body_text
    assert_invariants()


def test_take_a_substitute_cancels_the_waiting_units_and_allocates_the_substitute(shop, client, assert_invariants):
    order = place(("MUG", 5))  # 2 allocated, 3 waiting
    line = order.lines.get(product=shop.mug)

    page = client.get(url(order, "status-substitute", line.pk, "CUP"))
    assert "Instead of waiting for <strong>3 × Enamel mug</strong>" in page.content.decode()
    response = confirm(client, url(order, "status-substitute", line.pk, "CUP"))

    html = messages_after(client, response)
    assert "Done: you get 3 × Steel cup instead of the waiting Enamel mug." in html
    assert units(order, "MUG") == {"quantity": 5, "allocated": 2, "backordered": 0, "shipped": 0, "cancelled": 3}
    assert units(order, "CUP") == {"quantity": 3, "allocated": 3, "backordered": 0, "shipped": 0, "cancelled": 0}
    assert Backorder.objects.get(line=line).status == Backorder.Status.CANCELLED
    assert not Backorder.objects.filter(product=shop.cup).exists()
    assert StockLevel.objects.get(product=shop.cup).allocated == 3
    assert SalesOrder.objects.get(pk=order.pk).status == SalesOrder.Status.ALLOCATED
    event = ComplianceEvent.objects.get(line=line, kind=ComplianceEvent.Kind.SUBSTITUTE_ACCEPTED)
    assert (event.channel, event.ip_address, event.dedupe_key) == (
        "status_page",
        CUSTOMER_IP,
        f"substitute:{line.pk}:{shop.cup.pk}",
    )
    assert event.details["units"] == 3 and event.details["substitute_sku"] == "CUP"
    assert "Take a substitute" not in html  # nothing waits any more
    assert_invariants()


@pytest.mark.parametrize("case", ["short", "queued", "not_listed", "already_on_order"])
def test_a_substitute_that_cannot_be_taken_is_refused_and_nothing_changes(shop, client, case):
    sku = "CUP"
    if case == "short":
        order = place(("MUG", 8))  # 6 waiting, 5 cups
        expected = "Sorry, Steel cup is no longer in stock for 6 unit(s) (we have 5)."
    elif case == "queued":
        waiting_queue(shop.cup, 3)  # 3 cups are owed to earlier customers: only 2 are free
        order = place(("MUG", 5))
        expected = "Sorry, Steel cup is no longer in stock for 3 unit(s) (we have 2)."
    elif case == "not_listed":
        order = place(("MUG", 5))
        ProductFactory(sku="BOWL", name="Soup bowl")
        sku, expected = "BOWL", "Soup bowl is not offered as a substitute for Enamel mug."
    else:
        order = place(("MUG", 5), ("CUP", 1))
        expected = "Your order already has Steel cup."
    line = order.lines.get(product=shop.mug)
    path = url(order, "status-substitute", line.pk, sku)
    token = csrf(client, order)
    before = snapshot()

    page = client.get(path)
    assert page.status_code == 409
    assert expected in page.content.decode() and b'method="post"' not in page.content
    response = client.post(path, token)

    assert expected in messages_after(client, response)
    assert snapshot() == before


def test_a_line_of_another_order_is_refused_with_403(shop, client):
    mine = place(("TEA", 1))
    theirs = place(("MUG", 5))
    their_line = theirs.lines.get(product=shop.mug)
    path = url(mine, "status-substitute", their_line.pk, "CUP")
    token = csrf(client, mine)
    before = snapshot()

    assert client.get(path).status_code == 403
    response = client.post(path, token)

    assert response.status_code == 403
    assert "This link is invalid or has expired" in response.content.decode()
    assert snapshot() == before


def _forged(order: SalesOrder) -> str:
    token = status_token(order)
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def _expired(order: SalesOrder, monkeypatch) -> str:
    issued = int(time.time()) - 61 * 86400  # the policy's links last 60 days
    with monkeypatch.context() as patch:
        patch.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(issued))
        return status_token(order)


def _for_another_order(order: SalesOrder) -> str:
    """Correctly signed, but naming this order's id with another order's number."""
    other = place(("TEA", 1))
    return signing.dumps({"order": order.pk, "number": other.number}, salt="backorders.status-page", compress=True)


@pytest.mark.parametrize("make_token", ["forged", "expired", "mismatched"])
def test_forged_expired_and_mismatched_tokens_get_the_friendly_403_and_change_nothing(
    shop, client, monkeypatch, make_token
):
    order = place(("MUG", 5))
    line = order.lines.get(product=shop.mug)
    token = {
        "forged": lambda: _forged(order),
        "expired": lambda: _expired(order, monkeypatch),
        "mismatched": lambda: _for_another_order(order),
    }[make_token]()
    form = csrf(client, order)  # a valid CSRF token, so only the link can be what is refused
    before = snapshot()

    page = client.get(url(order, token=token))
    assert page.status_code == 403
    html = page.content.decode()
    assert "This link is invalid or has expired" in html and settings.SHOP_SUPPORT_EMAIL in html
    assert order.number not in html
    for name, args in (
        ("status-keep-waiting", ()),
        ("status-cancel", ()),
        ("status-cancel-order", ()),
        ("status-substitute", (line.pk, "CUP")),
    ):
        path = url(order, name, *args, token=token)
        assert client.get(path).status_code == 403, path
        assert client.post(path, form).status_code == 403, path

    assert snapshot() == before


def test_a_link_still_works_just_before_it_expires(shop, client, monkeypatch):
    order = place(("MUG", 5))
    issued = int(time.time()) - 59 * 86400
    with monkeypatch.context() as patch:
        patch.setattr(signing.TimestampSigner, "timestamp", lambda self: signing.b62_encode(issued))
        token = status_token(order)

    assert client.get(url(order, token=token)).status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancel_submitted_four_times_at_once_cancels_the_waiting_units_once_and_no_allocated_ones(
    shop, assert_invariants
):
    order = place(("MUG", 4))  # 2 allocated, 2 waiting
    clock_record_express_consent(line=order.lines.get(), channel="status_page")  # the line's clock already exists

    def submit():
        return customer_cancel_waiting(order=SalesOrder.objects.get(pk=order.pk), channel="status_page", ip=None)

    results = run_concurrently([submit] * 4, threads=4)

    assert [r for r in results if isinstance(r, Exception)] == []
    assert sorted(r.total for r in results) == [0, 0, 0, 2]
    assert units(order, "MUG") == {"quantity": 4, "allocated": 2, "backordered": 0, "shipped": 0, "cancelled": 2}
    assert StockLevel.objects.get(product=shop.mug).allocated == 2
    assert_invariants()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_customers_racing_for_the_same_substitute_stock_never_oversell_it(shop, assert_invariants):
    first, second = place(("MUG", 5)), place(("MUG", 3))  # 3 + 3 mugs waiting; 5 cups: only one can switch

    def accept(order):
        line = OrderLine.objects.select_related("order", "product").get(order=order, product=shop.mug)
        return lambda: substitute_accept(line=line, substitute=shop.cup, ip=None, channel="status_page")

    results = run_concurrently([accept(first), accept(second)], threads=2)

    assert sorted(type(r).__name__ for r in results) == ["Conflict", "OrderLine"]
    assert OrderLine.objects.filter(product=shop.cup).count() == 1
    assert StockLevel.objects.get(product=shop.cup).allocated == 3
    loser = second if isinstance(results[1], Conflict) else first
    assert units(loser, "MUG")["backordered"] == 3  # the loser still waits for its mugs
    assert_invariants()
