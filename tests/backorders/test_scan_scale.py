"""The daily scan at scale: a constant number of queries whatever the number of lines, clocks started a batch at
a time, and the profiles' due filters never missing a clock that `decide` would act on."""

import itertools
import json
from datetime import UTC, datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backorders.compliance import PROFILES
from backorders.models import Backorder, BackorderPolicy, ComplianceClock, ComplianceEvent
from backorders.services.compliance import (
    _substitutes,
    _substitutes_for,
    backorders_scan,
    clock_start,
    clocks_start,
    compliance_profile,
)
from notifications.models import Notification
from orders.models import OrderLine, SalesOrder

from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .factories import waiting_queue

pytestmark = pytest.mark.django_db

TODAY = timezone.localdate()


def queue(sku: str, count: int) -> None:
    """`count` waiting lines placed yesterday, due to arrive in 5 days: on time, nothing to tell anyone today."""
    product = ProductFactory(sku=sku)
    waiting_queue(product, count)
    Backorder.objects.filter(product=product).update(eta=TODAY + timedelta(days=5))


def scan_queries(**kwargs) -> int:
    with CaptureQueriesContext(connection) as captured:
        backorders_scan(as_of=TODAY, **kwargs)
    return len(captured)


def test_a_scan_costs_the_same_queries_for_5_and_50_lines():
    queue("FEW", 5)
    starting_5 = scan_queries()
    nothing_due_5 = scan_queries()
    queue("MANY", 50)
    starting_50 = scan_queries()
    nothing_due_55 = scan_queries()

    assert starting_50 == starting_5
    assert nothing_due_55 == nothing_due_5
    assert ComplianceClock.objects.count() == 55
    assert ComplianceEvent.objects.filter(kind="clock_started").count() == 55
    assert Notification.objects.count() == 0


def test_queries_grow_by_batch_not_by_line():
    queue("TEN", 10)
    ten = scan_queries(batch_size=10)  # one batch of clocks to start
    queue("THIRTY", 30)
    thirty = scan_queries(batch_size=10)  # three batches

    per_batch = (thirty - ten) / 2
    assert per_batch == int(per_batch) and per_batch <= 4  # fetch, one statement (clocks and events), a savepoint


def test_clocks_start_records_each_clock_once_and_skips_lines_that_have_one():
    product = ProductFactory(sku="TENT")
    waiting_queue(product, 3)
    lines = list(OrderLine.objects.order_by("pk").select_related("order", "product"))
    profile = compliance_profile(BackorderPolicy.current())
    clock_start(line=lines[0], profile=profile, today=TODAY)

    started = clocks_start(line_ids=[line.pk for line in lines], profile=profile, today=TODAY)

    assert started == 2
    assert clocks_start(line_ids=[line.pk for line in lines], profile=profile, today=TODAY) == 0
    assert ComplianceEvent.objects.filter(kind="clock_started").count() == 3
    clock = ComplianceClock.objects.get(line=lines[2])
    assert (clock.profile, clock.state, clock.ship_by) == ("us_ftc", "open", profile.ship_by(lines[2].order))
    event = ComplianceEvent.objects.get(dedupe_key=f"clock:{lines[2].pk}")
    assert (event.on, event.details) == (
        TODAY,
        {"ship_by": clock.ship_by.isoformat(), "profile": "us_ftc", "exempt": False},
    )


@pytest.mark.parametrize("code", sorted(PROFILES))
def test_the_due_filter_matches_every_clock_decide_acts_on(code):
    """Every combination of the fields `decide` reads around the edges (lead 2 days, transit 2 days): whatever
    decide acts on today, the filter the scan runs in the database selects."""
    policy = BackorderPolicy.current()
    profile = compliance_profile(policy, code)

    def day(n):
        return None if n is None else TODAY + timedelta(days=n)

    grid = list(
        itertools.product(
            [-1, 1, 2, 3, 30],  # ship_by
            [None, -1, 1, 3, 5, 40],  # ETA
            [0, 1],  # notices sent
            [None, -1, 0, 2, 3, 20],  # revised date
            ["none", "deemed", "express", "declined"],  # consent
            [None, -1, 1],  # consent deadline
            [False, True],  # indefinite consent
        )
    )
    product = ProductFactory(sku="GRID")
    waiting_queue(product, len(grid))
    backorders = list(Backorder.objects.filter(product=product).order_by("line_id"))
    for backorder, row in zip(backorders, grid, strict=True):
        backorder.eta = day(row[1])
    Backorder.objects.bulk_update(backorders, ["eta"])
    ComplianceClock.objects.bulk_create(
        ComplianceClock(
            line_id=backorder.line_id,
            profile=code,
            ship_by=day(ship_by),
            notices_sent=notices,
            revised_date=day(revised),
            consent=consent,
            consent_deadline=day(deadline),
            indefinite_consent=indefinite,
        )
        for backorder, (ship_by, _eta, notices, revised, consent, deadline, indefinite) in zip(
            backorders, grid, strict=True
        )
    )
    acted_on = {
        clock.pk
        for clock in ComplianceClock.objects.select_related("line__backorder")
        if profile.decide(clock, eta=clock.line.backorder.eta, today=TODAY).action != "none"
    }

    selected = set(ComplianceClock.objects.filter(profile.due_filter(TODAY)).values_list("pk", flat=True))

    assert acted_on, "the grid should contain clocks with something due"
    assert acted_on - selected == set()
    assert len(selected) < len(grid)  # and it is a filter: most of the grid has nothing due


def test_substitutes_for_many_products_match_the_per_line_answer():
    warehouse = WarehouseFactory()
    tent, lamp = ProductFactory(sku="TENT"), ProductFactory(sku="LAMP")
    subs = [ProductFactory(sku=f"SUB-{i}") for i in range(7)]
    for i, sub in enumerate(subs):
        if i != 3:  # SUB-3 is out of stock: never offered
            stock(sub, warehouse, 2)
    tent.substitutes.set(subs)
    lamp.substitutes.set(subs[:2])
    waiting_queue(tent, 1)
    waiting_queue(lamp, 1)

    found = _substitutes_for([tent.pk, lamp.pk])

    for line in OrderLine.objects.select_related("product"):
        assert found[line.product_id] == _substitutes(line)
    assert [s["sku"] for s in found[tent.pk]] == ["SUB-0", "SUB-1", "SUB-2", "SUB-4", "SUB-5"]


@pytest.mark.parametrize("code", sorted(PROFILES))
def test_clocks_started_in_one_statement_follow_the_profiles_python_rules(code):
    """clocks_start's SQL (the profile's clock_start_sql) gives every line the ship-by date and exemption the
    Python rules give it: agreed date or not, credit or not, cash on delivery, an exempt product, an order placed
    just after or just before midnight UTC."""
    policy = BackorderPolicy.current()
    profile = compliance_profile(policy, code)
    grid = list(
        itertools.product(
            [None, TODAY + timedelta(days=3)],  # ship-by date agreed at checkout
            [False, True],  # credit applied
            [False, True],  # cash on delivery
            [False, True],  # exempt product
            [time(0, 30), time(23, 30)],  # placed at (UTC)
        )
    )
    for i, (agreed, credit, cod, exempt, at) in enumerate(grid):
        [order] = waiting_queue(ProductFactory(sku=f"GRID-{i}", ftc_exempt=exempt), 1)
        placed = datetime.combine(TODAY - timedelta(days=i % 3), at, tzinfo=UTC)
        SalesOrder.objects.filter(pk=order.pk).update(
            ship_by=agreed, credit_applied=credit, cash_on_delivery=cod, placed_at=placed
        )
    lines = list(OrderLine.objects.select_related("order", "product").order_by("pk"))

    started = clocks_start(line_ids=[line.pk for line in lines], profile=profile, today=TODAY)

    assert started == len(grid)
    clocks = {clock.line_id: clock for clock in ComplianceClock.objects.all()}
    events = {event.line_id: event for event in ComplianceEvent.objects.filter(kind="clock_started")}
    for line in lines:
        exempt = code == "us_ftc" and (line.order.cash_on_delivery or line.product.ftc_exempt)
        expected = (code, "exempt" if exempt else "open", profile.ship_by(line.order))
        assert (clocks[line.pk].profile, clocks[line.pk].state, clocks[line.pk].ship_by) == expected
        assert (events[line.pk].on, events[line.pk].dedupe_key, events[line.pk].details) == (
            TODAY,
            f"clock:{line.pk}",
            {"ship_by": expected[2].isoformat(), "profile": code, "exempt": exempt},
        )
    assert {clock.state for clock in clocks.values()} == ({"open", "exempt"} if code == "us_ftc" else {"open"})


@pytest.mark.parametrize("zone", ["UTC", "America/Los_Angeles", "Pacific/Auckland"])
def test_offers_and_updates_written_in_sql_carry_the_keys_and_facts_of_the_python_rule(zone, settings):
    """The scan's INSERT … SELECT of offers and status updates writes, for every waiting line, the row the Python
    rule gives: offered after 14 days or without an ETA, an update per 7 days waited (numbered by whole periods
    from the UTC date it was placed, as placed_at.date() reads it), with the customer, order, line and facts."""
    settings.TIME_ZONE = zone
    today = timezone.localdate()
    product = ProductFactory(sku="WAITS")
    ages = [0, 1, 6, 7, 8, 13, 14, 15, 20, 21, 29]
    grid = list(itertools.product(ages, [time(0, 30), time(12), time(23, 30)], [True, False]))
    waiting_queue(product, len(grid))
    backorders = list(Backorder.objects.filter(product=product).order_by("line_id"))
    for backorder, (age, at, has_eta) in zip(backorders, grid, strict=True):
        placed = timezone.make_aware(datetime.combine(today - timedelta(days=age), at))
        backorder.placed_at = placed
        backorder.eta = today + timedelta(days=5) if has_eta else None
        SalesOrder.objects.filter(lines__pk=backorder.line_id).update(placed_at=placed)
    Backorder.objects.bulk_update(backorders, ["placed_at", "eta"])
    policy = BackorderPolicy.current()

    def facts(data: dict) -> str:
        return json.dumps(data, sort_keys=True)

    expected = set()
    for backorder in Backorder.objects.select_related("line__order__customer").order_by("pk"):
        local_day = timezone.localdate(backorder.placed_at)
        days = (today - backorder.placed_at.date()).days
        order = backorder.line.order
        who = (order.customer_id, order.customer.email, order.pk, backorder.line_id)
        if local_day <= today and (
            local_day <= today - timedelta(days=policy.cancellation_offer_days) or backorder.eta is None
        ):
            data = {"days_waiting": days, "no_eta": backorder.eta is None}
            expected.add(("cancellation_offer", *who, f"cancellation_offer:{backorder.line_id}", facts(data)))
        if local_day <= today - timedelta(days=policy.status_update_days):
            key = f"status_update:{backorder.line_id}:{days // policy.status_update_days}"
            expected.add(("status_update", *who, key, facts({"days_waiting": days})))

    backorders_scan(as_of=today)

    written = {
        (n.kind, n.customer_id, n.to_email, n.order_id, n.line_id, n.dedupe_key, facts(n.data))
        for n in Notification.objects.filter(kind__in=["cancellation_offer", "status_update"])
    }
    assert written == expected
    assert {kind for kind, *_ in written} == {"cancellation_offer", "status_update"}
    assert Notification.objects.filter(kind__in=["cancellation_offer", "status_update"], rendered=True).count() == 0
