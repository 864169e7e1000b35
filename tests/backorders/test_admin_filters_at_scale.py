"""The backorder list's filters and search in their index-friendly form list exactly the lines the selectors'
rules name (selectors.overdue_q and age_bucket_q, dashboard.ship_by_passed_q), through both of their paths:
a few ids handed to the database, or the condition itself when there are many."""

from datetime import datetime, time, timedelta
from urllib.parse import urlencode

import pytest
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

import orders.admin as orders_admin
from backorders.dashboard import ship_by_passed_q
from backorders.models import Backorder, BackorderPolicy, ComplianceClock, ComplianceEvent
from backorders.selectors import AGE_BUCKETS
from orders.models import SalesOrder, Shipment

from ..inventory.factories import ProductFactory
from ..orders.factories import CustomerFactory
from .factories import waiting_queue


# The rules as first written (selectors now state them in the indexed form the admin runs): the reference.
def age_bucket_q(bucket: str, *, as_of):
    low, high = AGE_BUCKETS[bucket]
    q = Q(placed_at__date__lte=as_of - timedelta(days=low))
    if high is not None:
        q &= Q(placed_at__date__gte=as_of - timedelta(days=high))
    return q


def overdue_q(*, as_of):
    return Q(status=Backorder.Status.WAITING) & (Q(eta__lt=as_of) | Q(line__order__ship_by__lt=as_of))


pytestmark = pytest.mark.django_db

BACKORDERS = "admin:backorders_backorder_changelist"


def listed(client, query: str) -> set[str]:
    response = client.get(reverse(BACKORDERS) + query)
    assert response.status_code == 200, query
    return {backorder.line.order.number for backorder in response.context["cl"].result_list}


def numbers(queryset) -> set[str]:
    return set(queryset.values_list("line__order__number", flat=True))


@pytest.fixture(params=["few ids", "condition"])
def search_path(request, monkeypatch):
    """Run the test with the ids listed (the usual case) and with the condition kept (more than the limit)."""
    if request.param == "condition":
        monkeypatch.setattr(orders_admin, "SEARCH_ID_LIMIT", 0)
    return request.param


def local_time(day, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute, second)))


def test_age_buckets_list_what_age_bucket_q_names_at_the_day_boundaries(admin_client, settings):
    # Given lines placed just before and after local midnight around every bucket's bounds (a zone west of UTC,
    # so that a UTC date would differ)
    settings.TIME_ZONE = "America/New_York"
    today = timezone.localdate()
    orders = waiting_queue(ProductFactory(sku="MUG"), 14)
    moments = []
    for days in (0, 7, 8, 14, 15, 30, 31):
        moments.append(local_time(today - timedelta(days=days)))
        moments.append(local_time(today - timedelta(days=days), 23, 59, 59))
    for order, moment in zip(orders, moments, strict=True):
        Backorder.objects.filter(line__order=order).update(placed_at=moment)

    for bucket in AGE_BUCKETS:
        expected = numbers(Backorder.objects.filter(age_bucket_q(bucket, as_of=today)))
        # When / then
        assert listed(admin_client, "?" + urlencode({"age": bucket})) == expected, bucket
        assert expected, bucket


def test_overdue_lists_what_overdue_q_names(admin_client, search_path):
    # Given lines late by their ETA, by their order's promised date, by both, on time, and without either date
    today = timezone.localdate()
    late_eta, late_promise, both, on_time, _undated, filled = waiting_queue(ProductFactory(sku="MUG"), 6)
    Backorder.objects.filter(line__order__in=[late_eta, both]).update(eta=today - timedelta(days=1))
    Backorder.objects.filter(line__order=on_time).update(eta=today + timedelta(days=3))
    SalesOrder.objects.filter(pk__in=[late_promise.pk, both.pk, filled.pk]).update(ship_by=today - timedelta(days=2))
    SalesOrder.objects.filter(pk=on_time.pk).update(ship_by=today)
    Backorder.objects.filter(line__order=filled).update(status=Backorder.Status.FILLED, quantity=0)

    # When / then
    overdue = numbers(Backorder.objects.filter(overdue_q(as_of=today)))
    assert overdue == {late_eta.number, late_promise.number, both.number}
    assert listed(admin_client, "?overdue=yes") == overdue
    assert listed(admin_client, "?overdue=no") == numbers(
        Backorder.objects.exclude(overdue_q(as_of=today)).filter(status=Backorder.Status.WAITING)
    )
    assert listed(admin_client, "?overdue=no&status=all") == numbers(Backorder.objects.exclude(overdue_q(as_of=today)))


@pytest.mark.parametrize(
    "profile", [BackorderPolicy.ComplianceProfile.US_FTC, BackorderPolicy.ComplianceProfile.EU_CRD]
)
def test_ship_by_passed_lists_what_the_dashboard_counts(admin_client, search_path, profile):
    # Given lines with a clock past or not past T, without a clock with a promised date past or not, and without
    # either, placed long ago (cash and credit orders) or recently
    BackorderPolicy.objects.filter(pk=BackorderPolicy.current().pk).update(compliance_profile=profile)
    today = timezone.localdate()
    orders = waiting_queue(ProductFactory(sku="MUG"), 9)
    clock_passed, clock_ahead, promised_passed, promised_ahead, old_cash, old_credit, older_credit, recent, done = (
        orders
    )
    for order, ship_by in ((clock_passed, today - timedelta(days=1)), (clock_ahead, today + timedelta(days=5))):
        ComplianceClock.objects.create(line=order.lines.get(), profile=profile, ship_by=ship_by)
    SalesOrder.objects.filter(pk=clock_ahead.pk).update(ship_by=today - timedelta(days=9))  # the clock's T wins
    SalesOrder.objects.filter(pk=promised_passed.pk).update(ship_by=today - timedelta(days=1))
    SalesOrder.objects.filter(pk=promised_ahead.pk).update(ship_by=today)
    SalesOrder.objects.filter(pk__in=[old_credit.pk, older_credit.pk]).update(credit_applied=True)
    for order, days in ((old_cash, 40), (old_credit, 40), (older_credit, 60), (recent, 5), (done, 90)):
        Backorder.objects.filter(line__order=order).update(placed_at=local_time(today - timedelta(days=days), 12))
    Backorder.objects.filter(line__order=done).update(status=Backorder.Status.CANCELLED, quantity=0)

    # When
    expected = numbers(Backorder.objects.filter(ship_by_passed_q(as_of=today, policy=BackorderPolicy.current())))

    # Then
    if profile == BackorderPolicy.ComplianceProfile.US_FTC:
        assert expected == {clock_passed.number, promised_passed.number, old_cash.number, older_credit.number}
    else:
        assert expected == {
            clock_passed.number,
            promised_passed.number,
            old_cash.number,
            old_credit.number,
            older_credit.number,
        }
    assert listed(admin_client, "?ship_by=passed") == expected


def test_search_finds_skus_order_numbers_and_emails_in_any_case(admin_client, search_path):
    # Given two products' queues, one order of a known customer among them
    mug, lamp = ProductFactory(sku="MUG-RED", name="Red mug"), ProductFactory(sku="LAMP", name="Desk lamp")
    mugs = waiting_queue(mug, 3)
    lamps = waiting_queue(lamp, 2)
    SalesOrder.objects.filter(pk=lamps[0].pk).update(
        number="SO-2611-ABC", customer=CustomerFactory(email="ada@example.com", name="Ada Lovelace")
    )

    # When / then
    assert listed(admin_client, "?q=mug-r") == {o.number for o in mugs}  # part of a SKU
    assert listed(admin_client, "?q=desk") == {"SO-2611-ABC", lamps[1].number}  # part of a product name
    assert listed(admin_client, "?q=so-2611") == {"SO-2611-ABC"}  # how the order number starts
    assert listed(admin_client, "?q=ADA@") == {"SO-2611-ABC"}  # how the email starts
    assert listed(admin_client, "?q=nothing-like-this") == set()
    assert listed(admin_client, f"?q=MUG&sku={lamp.sku}") == set()  # and the other filters still apply


def test_sku_filter_lists_one_products_lines(admin_client):
    mugs = waiting_queue(ProductFactory(sku="MUG"), 2)
    waiting_queue(ProductFactory(sku="LAMP"), 1)

    assert listed(admin_client, "?sku=MUG") == {o.number for o in mugs}
    assert listed(admin_client, "?sku=NOPE") == set()


def test_queue_is_listed_per_product_in_fill_order(admin_client):
    # Given two products' queues, one line pinned
    first, second = ProductFactory(sku="ZED"), ProductFactory(sku="ABC")
    zed = waiting_queue(first, 3)
    abc = waiting_queue(second, 2)
    Backorder.objects.filter(line__order=zed[2]).update(priority=5)

    # When
    response = admin_client.get(reverse(BACKORDERS))

    # Then the products come in the queue index's order (by id), each in its fill order (pinned first, FIFO)
    assert [b.line.order.number for b in response.context["cl"].result_list] == [
        zed[2].number,
        zed[0].number,
        zed[1].number,
        abc[0].number,
        abc[1].number,
    ]


def test_compliance_event_and_shipment_filters_use_their_indexes_columns(admin_client):
    """The kind / channel and shipped_at filters list the rows they name (their indexes are checked below)."""
    [order] = waiting_queue(ProductFactory(sku="MUG"), 1)
    line = order.lines.get()
    ComplianceEvent.objects.create(line=line, kind="clock_started", on=timezone.localdate(), dedupe_key="a")
    ComplianceEvent.objects.create(
        line=line, kind="consent_express", channel="status_page", on=timezone.localdate(), dedupe_key="b"
    )
    Shipment.objects.create(order=order, shipped_at=timezone.now() - timedelta(days=40))

    events = admin_client.get(reverse("admin:backorders_complianceevent_changelist") + "?kind__exact=consent_express")
    channel = admin_client.get(reverse("admin:backorders_complianceevent_changelist") + "?channel__exact=system")
    since = (timezone.now() - timedelta(days=7)).isoformat()
    shipments = admin_client.get(reverse("admin:orders_shipment_changelist"), {"shipped_at__gte": since})

    assert [e.dedupe_key for e in events.context["cl"].result_list] == ["b"]
    assert [e.dedupe_key for e in channel.context["cl"].result_list] == ["a"]
    assert list(shipments.context["cl"].result_list) == []


def test_admin_filters_are_backed_by_indexes():
    """The indexes EXPLAIN showed these filters using on a 1,000,000-row database (see the admin's docstrings)."""

    def names(model) -> set[str]:
        return {index.name for index in model._meta.indexes}

    assert {"backorder_status_placed_idx", "backorder_queue_idx"} <= names(Backorder)
    assert {"clock_ship_by_idx"} <= names(ComplianceClock)
    assert {"compliance_event_kind_idx", "compliance_event_channel_idx"} <= names(ComplianceEvent)
    assert {"salesorder_ship_by_idx"} <= names(SalesOrder)
    assert {"shipment_shipped_at_idx"} <= names(Shipment)
