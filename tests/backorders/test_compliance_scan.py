"""COMPLIANCE.md's edge cases, driven by `scan_backorders --as-of` (us_ftc and eu_crd profiles)."""

from datetime import date, datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from backorders.compliance import add_working_days
from backorders.models import Backorder, BackorderPolicy, ComplianceClock, ComplianceEvent
from backorders.services.compliance import (
    backorders_scan,
    clock_record_express_consent,
    customer_cancel_backordered,
)
from backorders.services.eta import backorder_set_eta
from notifications.models import Notification
from notifications.services import notifications_dispatch
from orders.models import OrderLine
from orders.services import order_ship

from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .factories import place

pytestmark = pytest.mark.django_db

DAY0 = timezone.localdate()
T = DAY0 + timedelta(days=30)  # us_ftc default: 30 days from the order, counted inclusively


def d(n: int) -> date:
    return DAY0 + timedelta(days=n)


def order_waiting(quantity: int = 1, *, eta: date | None = None, sku: str = "TENT", **kwargs):
    ProductFactory(sku=sku, lead_time_days=10)
    placed = timezone.make_aware(datetime.combine(DAY0, time(9)))
    order = place((sku, quantity), placed_at=placed, **kwargs)
    if eta is not None:
        backorder_set_eta(
            backorders=Backorder.objects.filter(line__order=order), eta=eta, reason="Supplier date", acting_user=None
        )
    return order


def scan(day: date):
    return backorders_scan(as_of=day)


def clock_of(order) -> ComplianceClock:
    return ComplianceClock.objects.get(line__order=order)


def sent(order, kind: str) -> list[Notification]:
    return list(Notification.objects.filter(order=order, kind=kind).order_by("id"))


def events(order) -> list[str]:
    return list(ComplianceEvent.objects.filter(line__order=order).order_by("id").values_list("kind", flat=True))


def use_profile(code: str) -> None:
    BackorderPolicy.objects.filter(pk=1).update(compliance_profile=code)


# --- us_ftc ------------------------------------------------------------------------------------------


def test_ship_by_is_30_days_counted_inclusively_and_50_with_credit():
    order = order_waiting(eta=d(20))
    credit = order_waiting(eta=d(20), sku="CREDIT", credit_applied=True)
    scan(d(1))
    assert clock_of(order).ship_by == T
    assert clock_of(credit).ship_by == d(50)


def test_eta_on_t_is_on_time_until_the_notice_lead_window():
    order = order_waiting(eta=T)
    scan(T - timedelta(days=3))
    assert sent(order, "delay_notice") == []

    scan(T - timedelta(days=2))  # T - notice_lead_days arrives unshipped: notice, R not after T => express
    [notice] = sent(order, "delay_notice")
    assert notice.subject.startswith("Action needed: reply to keep your order")


def test_r_equal_t_plus_30_silence_is_consent():
    order = order_waiting(eta=T + timedelta(days=30))
    scan(d(1))

    [notice] = sent(order, "delay_notice")
    clock = clock_of(order)
    assert (clock.consent, clock.revised_date, clock.consent_deadline) == ("deemed", T + timedelta(days=30), None)
    assert not notice.subject.startswith("Action needed")
    assert events(order) == ["clock_started", "notice_sent", "consent_deemed"]

    scan(T + timedelta(days=29))  # silence: nothing is cancelled
    assert OrderLine.objects.get(order=order).cancelled == 0


def test_r_equal_t_plus_31_needs_express_consent_and_cancels_without_it():
    order = order_waiting(eta=T + timedelta(days=31))
    scan(d(1))

    [notice] = sent(order, "delay_notice")
    assert notice.subject.startswith("Action needed: reply to keep your order")
    assert clock_of(order).consent_deadline == T + timedelta(days=30)

    scan(T + timedelta(days=30))  # still within 30 days of T
    assert OrderLine.objects.get(order=order).cancelled == 0

    scan(T + timedelta(days=31))
    line = OrderLine.objects.get(order=order)
    assert (line.cancelled, line.backordered) == (1, 0)
    clock = clock_of(order)
    cancelled_on = T + timedelta(days=31)
    assert (clock.state, clock.cancelled_on) == ("cancelled", cancelled_on)
    assert clock.refund_due_by == add_working_days(cancelled_on, 7, country="US")
    assert events(order)[-2:] == ["deemed_cancelled", "refund_due"]
    [confirmation] = sent(order, "cancellation_confirmed")
    assert confirmation.status == "pending" or confirmation.status == "sent"


def test_express_consent_keeps_the_order_past_the_deadline():
    order = order_waiting(eta=T + timedelta(days=31))
    scan(d(1))
    assert clock_record_express_consent(
        line=OrderLine.objects.get(order=order), channel="status_page", ip="203.0.113.9"
    )

    scan(T + timedelta(days=31))

    assert OrderLine.objects.get(order=order).cancelled == 0
    consent = ComplianceEvent.objects.get(line__order=order, kind="consent_express")
    assert (consent.channel, consent.ip_address) == ("status_page", "203.0.113.9")


def test_no_eta_needs_express_consent():
    order = order_waiting()
    Backorder.objects.filter(line__order=order).update(eta=None, eta_source="")
    scan(d(1))
    [notice] = sent(order, "delay_notice")
    assert notice.subject.startswith("Action needed")
    assert clock_of(order).revised_date is None


def test_a_second_slip_of_one_day_gets_a_renewed_notice_that_needs_express_consent():
    order = order_waiting(eta=T + timedelta(days=10))
    scan(d(1))
    assert clock_of(order).consent == "deemed"

    backorder_set_eta(
        backorders=Backorder.objects.filter(line__order=order),
        eta=T + timedelta(days=11),
        reason="Supplier slipped a day",
        acting_user=None,
    )
    scan(d(2))

    [renewed] = sent(order, "renewed_delay_notice")
    assert renewed.subject.startswith("Action needed")
    clock = clock_of(order)
    assert (clock.consent, clock.consent_deadline, clock.revised_date) == (
        "none",
        T + timedelta(days=10),
        T + timedelta(days=11),
    )
    scan(T + timedelta(days=11))  # silence is never consent on a renewed notice
    assert OrderLine.objects.get(order=order).cancelled == 1


def test_a_notice_is_never_sent_after_t_the_line_is_deemed_cancelled():
    order = order_waiting(eta=T + timedelta(days=5))

    scan(T + timedelta(days=1))  # the first scan that sees it is already past T

    assert sent(order, "delay_notice") == []
    assert OrderLine.objects.get(order=order).cancelled == 1
    assert "deemed_cancelled" in events(order)


def test_customer_cancels_after_consenting_refund_due_and_no_further_notices():
    order = order_waiting(eta=T + timedelta(days=31))
    scan(d(1))
    line = OrderLine.objects.get(order=order)
    clock_record_express_consent(line=line, channel="status_page")

    assert customer_cancel_backordered(order=order, channel="status_page", on=d(5)) == {"TENT": 1}

    clock = clock_of(order)
    assert (clock.state, clock.refund_due_by) == ("cancelled", add_working_days(d(5), 7, country="US"))
    assert Backorder.objects.get(line__order=order).status == "cancelled"
    notifications_before = Notification.objects.count()
    events_before = len(events(order))
    scan(T + timedelta(days=40))
    assert Notification.objects.count() == notifications_before
    assert len(events(order)) == events_before


def test_a_line_that_ships_partly_keeps_its_clock_for_the_rest_and_refund_covers_only_the_cancelled():
    product = ProductFactory(sku="TENT", lead_time_days=10)
    stock(product, WarehouseFactory(), 2)
    placed = timezone.make_aware(datetime.combine(DAY0, time(9)))
    order = place(("TENT", 5), placed_at=placed)
    backorder_set_eta(
        backorders=Backorder.objects.filter(line__order=order),
        eta=T + timedelta(days=40),
        reason="Long delay",
        acting_user=None,
    )
    shipped_on = timezone.localdate()  # the shipment is recorded on the day it happens
    order_ship(order=order)  # 2 shipped, 3 wait

    scan(d(1))
    scan(T + timedelta(days=31))

    line = OrderLine.objects.get(order=order)
    assert (line.shipped, line.cancelled, line.backordered) == (2, 3, 0)
    assert clock_of(order).refund_units == 3
    shipped = ComplianceEvent.objects.get(line=line, kind="shipped")
    assert (shipped.on, shipped.details["units"]) == (shipped_on, 2)
    assert events(order).count("shipped") == 1  # recorded once however often the scan runs


def test_the_scan_is_idempotent_for_the_same_day():
    order_waiting(eta=T + timedelta(days=31))
    order_waiting(eta=T + timedelta(days=5), sku="LAMP")
    scan(d(1))
    counts = (ComplianceEvent.objects.count(), Notification.objects.count(), ComplianceClock.objects.count())

    result = scan(d(1))

    assert (ComplianceEvent.objects.count(), Notification.objects.count(), ComplianceClock.objects.count()) == counts
    assert (result.notices, result.renewed_notices, result.cancellations, result.clocks_started) == (0, 0, 0, 0)


def test_ftc_exempt_products_and_cod_orders_get_no_option_notices():
    order = order_waiting(eta=T + timedelta(days=40), sku="SEEDS")
    cod = order_waiting(eta=T + timedelta(days=40), sku="COD", cash_on_delivery=True)
    from inventory.models import Product

    Product.objects.filter(sku="SEEDS").update(ftc_exempt=True)
    scan(d(1))
    scan(T + timedelta(days=31))
    assert clock_of(order).state == clock_of(cod).state == "exempt"
    assert sent(order, "delay_notice") == sent(cod, "delay_notice") == []
    assert OrderLine.objects.get(order=order).cancelled == 0


def test_refund_due_counts_working_days_and_skips_holidays():
    # Wed 25 Nov 2026; Thanksgiving Thu 26 Nov; weekends skipped.
    assert add_working_days(date(2026, 11, 25), 7, country="US") == date(2026, 12, 7)
    assert add_working_days(date(2026, 12, 4), 1, country="US") == date(2026, 12, 7)


def test_cancellation_offer_after_14_days_and_status_updates_every_7_days():
    order = order_waiting(eta=d(20))
    scan(d(6))
    assert sent(order, "status_update") == [] and sent(order, "cancellation_offer") == []

    scan(d(7))
    assert len(sent(order, "status_update")) == 1
    scan(d(8))
    assert len(sent(order, "status_update")) == 1
    scan(d(14))
    assert len(sent(order, "status_update")) == 2
    assert len(sent(order, "cancellation_offer")) == 1
    scan(d(15))
    assert len(sent(order, "cancellation_offer")) == 1


def test_offers_and_updates_are_rendered_when_sent_with_what_was_decided(mailoutbox):
    BackorderPolicy.objects.filter(pk=1).update(coupon_code="SORRY10")
    order = order_waiting(eta=d(20))
    substitute = ProductFactory(sku="TENT-XL", name="Bigger tent")
    OrderLine.objects.get(order=order).product.substitutes.add(substitute)
    stock(substitute, WarehouseFactory(), 3)
    mailoutbox.clear()

    scan(d(14))
    assert not Notification.objects.filter(kind__in=["cancellation_offer", "status_update"], rendered=True).exists()
    notifications_dispatch()

    [offer] = sent(order, "cancellation_offer")
    [update] = sent(order, "status_update")
    assert offer.status == update.status == "sent" and offer.rendered and update.rendered
    offer_mail = next(m for m in mailoutbox if m.subject == offer.subject)
    assert "waiting 14 days" in offer_mail.body
    assert "Bigger tent (TENT-XL)" in offer_mail.body and "SORRY10" in offer_mail.body
    assert order.number in offer_mail.body
    update_mail = next(m for m in mailoutbox if m.subject == update.subject)
    assert order.number in update_mail.body and "TENT" in update_mail.body


def test_scan_command_accepts_as_of_and_rejects_a_bad_date(capsys):
    order_waiting(eta=T + timedelta(days=31))
    call_command("scan_backorders", "--as-of", d(1).isoformat())
    assert "notices 1" in capsys.readouterr().out
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="--as-of must be a date"):
        call_command("scan_backorders", "--as-of", "tomorrow")


# --- eu_crd ------------------------------------------------------------------------------------------


def test_eu_missed_delivery_gets_an_additional_period_and_no_silence_consent():
    use_profile("eu_crd")
    order = order_waiting(eta=d(29))  # + 2 transit days = day 31 > day 30
    scan(d(1))

    [notice] = sent(order, "delay_notice")
    assert not notice.subject.startswith("Action needed")
    clock = clock_of(order)
    assert clock.revised_date == d(30) + timedelta(days=14)
    assert clock.consent == "none"
    assert "consent_deemed" not in events(order)

    scan(d(44))
    assert "additional_period_expired" not in events(order)
    scan(d(45))  # the additional period passed: the customer may terminate; nothing is cancelled for them
    assert "additional_period_expired" in events(order)
    assert OrderLine.objects.get(order=order).cancelled == 0
    assert len(sent(order, "cancellation_offer")) >= 1
    scan(d(46))
    assert events(order).count("additional_period_expired") == 1


def test_eu_termination_refund_due_in_14_days():
    use_profile("eu_crd")
    order = order_waiting(eta=d(29))
    scan(d(1))
    customer_cancel_backordered(order=order, channel="status_page", on=d(3))
    assert clock_of(order).refund_due_by == d(3) + timedelta(days=14)


def test_eu_delivery_on_time_sends_nothing():
    use_profile("eu_crd")
    order = order_waiting(eta=d(20))
    scan(d(1))
    assert sent(order, "delay_notice") == []
