"""The daily scan at scale: a constant number of queries whatever the number of lines, clocks started a batch at
a time, and the profiles' due filters never missing a clock that `decide` would act on."""

import itertools
from datetime import timedelta

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
from orders.models import OrderLine

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
    assert per_batch == int(per_batch) and per_batch <= 6


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
