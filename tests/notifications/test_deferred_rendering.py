"""Bulk emails (a receipt filling many waiting lines) are stored unrendered in one statement and rendered by
the worker that sends them: the customer gets the same email, nothing is lost when the broker is down, and
writing them costs the same number of queries for 5 lines as for 200."""

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext

from backorders.services import stock_adjust_and_fill
from notifications.models import Notification
from notifications.services import notification_send, notifications_dispatch, notifications_render

from ..backorders.factories import place, waiting_queue
from ..inventory.factories import ProductFactory, WarehouseFactory

pytestmark = pytest.mark.django_db


def test_a_filled_line_email_is_rendered_when_sent_and_reads_as_before(django_capture_on_commit_callbacks):
    product = ProductFactory(sku="KETTLE", name="Stove kettle", lead_time_days=10)
    order = place(("KETTLE", 2))
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=False):
        stock_adjust_and_fill(product=product, warehouse=WarehouseFactory(), delta=2, reason="Delivery")

    [filled] = Notification.objects.filter(order=order, kind="backorder_filled")
    assert (filled.rendered, filled.subject, filled.status) == (False, "", "pending")
    assert filled.to_email == order.customer.email and filled.line.product.sku == "KETTLE"

    assert notification_send(notification_id=filled.pk) == "sent"

    filled.refresh_from_db()
    assert filled.rendered and order.number in filled.subject
    [message] = mail.outbox
    assert message.subject == filled.subject
    assert "Stove kettle (KETTLE)" in message.body and order.number in message.body
    assert "/status/" in message.body  # the order's status link
    [(html, _)] = message.alternatives
    assert "Stove kettle" in html


def test_with_the_broker_down_the_dispatcher_renders_and_sends_each_once(settings, django_capture_on_commit_callbacks):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    product = ProductFactory(sku="KETTLE", lead_time_days=10)
    orders = waiting_queue(product, 5)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        stock_adjust_and_fill(product=product, warehouse=WarehouseFactory(), delta=5, reason="Delivery")

    filled = Notification.objects.filter(kind="backorder_filled")
    assert filled.count() == 5 and not filled.filter(rendered=True).exists()
    assert mail.outbox == []

    settings.CELERY_TASK_ALWAYS_EAGER = True
    notifications_dispatch()
    notifications_dispatch()

    assert sorted(m.subject for m in mail.outbox) == sorted(
        Notification.objects.filter(kind="backorder_filled").values_list("subject", flat=True)
    )
    assert len(mail.outbox) == 5
    assert {o.number for o in orders} == {n.order.number for n in filled}
    assert set(filled.values_list("status", flat=True)) == {"sent"}


def test_rendering_twice_changes_nothing():
    product = ProductFactory(sku="KETTLE", lead_time_days=10)
    waiting_queue(product, 3)
    stock_adjust_and_fill(product=product, warehouse=WarehouseFactory(), delta=3, reason="Delivery")
    ids = list(Notification.objects.filter(kind="backorder_filled").values_list("pk", flat=True))
    Notification.objects.filter(pk__in=ids).update(rendered=False, subject="")

    assert notifications_render(ids=ids) == 3
    assert notifications_render(ids=ids) == 0
    assert not Notification.objects.filter(pk__in=ids, subject="").exists()


def _fill_queries(lines: int) -> int:
    product = ProductFactory(lead_time_days=10)
    waiting_queue(product, lines)
    warehouse = WarehouseFactory()
    with CaptureQueriesContext(connection) as queries:
        stock_adjust_and_fill(product=product, warehouse=warehouse, delta=lines, reason="Delivery")
    assert Notification.objects.filter(kind="backorder_filled", line__product=product).count() == lines
    return len(queries)


@pytest.mark.postgres  # SQLite splits big statements by its parameter limit
def test_writing_the_filled_emails_costs_the_same_queries_for_5_or_200_lines(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # sending is not what is counted here
    assert _fill_queries(5) == _fill_queries(200)


def test_the_admin_lists_an_unrendered_email_as_such_and_renders_it_when_opened(admin_client):
    product = ProductFactory(sku="KETTLE", lead_time_days=10)
    [order] = waiting_queue(product, 1)
    stock_adjust_and_fill(product=product, warehouse=WarehouseFactory(), delta=1, reason="Delivery")
    filled = Notification.objects.get(kind="backorder_filled")
    Notification.objects.filter(pk=filled.pk).update(rendered=False, subject="", body_text="", body_html="")

    listing = admin_client.get("/admin/notifications/notification/")
    assert "rendered when sent" in listing.content.decode()

    page = admin_client.get(f"/admin/notifications/notification/{filled.pk}/change/")
    assert page.status_code == 200
    filled.refresh_from_db()
    assert filled.rendered and order.number in filled.subject
    assert order.number in page.content.decode()


def test_the_emails_written_with_a_fill_are_enqueued_on_commit_and_sent_once(django_capture_on_commit_callbacks):
    # The fill writes its emails inside its one statement; their new ids come back from it and go to the sender
    # after commit (eager Celery here), one task per chunk.
    product = ProductFactory(sku="KETTLE", lead_time_days=10)
    orders = waiting_queue(product, 3)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        stock_adjust_and_fill(product=product, warehouse=WarehouseFactory(), delta=3, reason="Delivery")

    filled = Notification.objects.filter(kind="backorder_filled")
    assert set(filled.values_list("status", flat=True)) == {"sent"}
    assert sorted(m.to[0] for m in mail.outbox) == sorted(o.customer.email for o in orders)
    assert len(callbacks) >= 1
