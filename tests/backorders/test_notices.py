"""Customer emails caused by queue changes: created, filled, ETA changed (quiet period, threshold, daily limit)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from backorders.models import Backorder, BackorderPolicy
from backorders.services import stock_adjust_and_fill
from backorders.services.eta import backorder_set_eta
from notifications.models import Notification
from notifications.services import notifications_dispatch

from ..inventory.factories import ProductFactory, WarehouseFactory
from .factories import place

pytestmark = pytest.mark.django_db


def today():
    """Today when the test runs (a module constant would be a day off for a run that crosses midnight)."""
    return timezone.localdate()


def set_eta(order, days: int) -> None:
    backorder_set_eta(
        backorders=Backorder.objects.filter(line__order=order),
        eta=today() + timedelta(days=days),
        reason="Supplier update",
        acting_user=None,
    )


def eta_emails(order) -> list[Notification]:
    return list(Notification.objects.filter(order=order, kind="eta_changed"))


def test_backorder_created_is_written_with_the_order_and_filled_when_stock_arrives(mailoutbox):
    product = ProductFactory(sku="KETTLE", lead_time_days=10)
    order = place(("KETTLE", 2))
    [created] = Notification.objects.filter(order=order, kind="backorder_created")
    assert not created.rendered  # rendered by the sender, outside the order's transaction
    notifications_dispatch()
    created.refresh_from_db()
    assert created.status == "sent" and "KETTLE" in created.body_text and order.number in created.subject
    eta = Backorder.objects.get(line__order=order).eta
    [message] = [m for m in mailoutbox if m.subject == created.subject]
    assert "KETTLE" in message.body and eta.strftime("%-d %b %Y") in message.body

    stock_adjust_and_fill(product=product, warehouse=WarehouseFactory(), delta=2, reason="Delivery")

    [filled] = Notification.objects.filter(order=order, kind="backorder_filled")
    assert filled.line.product.sku == "KETTLE"


def test_an_eta_changed_three_times_in_the_quiet_period_produces_one_email(mailoutbox):
    ProductFactory(sku="KETTLE", lead_time_days=10)
    order = place(("KETTLE", 1))
    set_eta(order, 20)
    set_eta(order, 25)
    set_eta(order, 30)

    [email] = eta_emails(order)
    assert email.status == "pending"
    assert email.scheduled_for > timezone.now() + timedelta(minutes=29)
    assert email.data["previous_eta"] == (today() + timedelta(days=11)).isoformat()  # the lead-time date first told
    notifications_dispatch()  # still in the quiet period: not sent
    email.refresh_from_db()
    assert email.status == "pending"

    Notification.objects.filter(pk=email.pk).update(scheduled_for=timezone.now())  # the quiet period is over
    notifications_dispatch()

    email.refresh_from_db()
    assert email.status == "sent"
    eta_mails = [m for m in mailoutbox if m.subject == email.subject]
    assert len(eta_mails) == 1
    assert (today() + timedelta(days=30)).strftime("%-d %b %Y") in eta_mails[0].body


def test_a_corrected_typo_within_the_quiet_period_sends_nothing():
    ProductFactory(sku="KETTLE", lead_time_days=10)
    order = place(("KETTLE", 1))
    set_eta(order, 40)  # typo
    set_eta(order, 11)  # corrected back to the date the customer knows

    [email] = eta_emails(order)
    assert email.status == "suppressed"


def test_a_small_move_below_the_threshold_sends_nothing():
    ProductFactory(sku="KETTLE", lead_time_days=10)
    order = place(("KETTLE", 1))
    BackorderPolicy.objects.filter(pk=1).update(eta_change_threshold_days=2)
    set_eta(order, 12)  # one day later than the lead-time date
    assert eta_emails(order) == []


def test_at_most_one_eta_email_a_day_per_line():
    ProductFactory(sku="KETTLE", lead_time_days=10)
    order = place(("KETTLE", 1))
    set_eta(order, 20)
    Notification.objects.filter(kind="eta_changed").update(scheduled_for=timezone.now())
    notifications_dispatch()
    assert [n.status for n in eta_emails(order)] == ["sent"]
    set_eta(order, 30)
    assert [n.status for n in eta_emails(order)] == ["sent"]
