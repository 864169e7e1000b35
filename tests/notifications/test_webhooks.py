"""Webhooks, unit level: signing, emission (who gets what, rollback, on-commit enqueueing), the claim / record
cycle (backoff, failure, lease, crash, dispatcher tokens, endpoint deferral), redeliver, the events the
back office emits, the admin and the command. HTTP is a fake `post` here; test_webhooks_http.py uses real
servers on loopback."""

import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.messages import get_messages
from django.core.management import call_command
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from backorders.models import Backorder
from backorders.services import LineRequest, order_cancel, stock_adjust_and_fill
from backorders.services.eta import backorder_set_eta
from backorders.services.purchasing import purchase_order_receive
from backorders.services.shipping import order_ship_and_notify
from config.celery import app as celery_app
from notifications import webhooks
from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.webhooks import (
    CLAIM_LEASE,
    ENQUEUE_ON_COMMIT_LIMIT,
    MAX_ATTEMPTS,
    PROBE_HEADSTART,
    QUEUE_LEASE,
    HttpResult,
    retry_delay,
    webhook_body,
    webhook_deliver,
    webhook_emit,
    webhook_emit_many,
    webhook_redeliver,
    webhook_signature,
    webhooks_dispatch,
)
from orders.exceptions import NothingToShip

from ..backorders.factories import place, waiting_queue
from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock

pytestmark = pytest.mark.django_db

Event = WebhookEndpoint.Event
Status = WebhookDelivery.Status
T0 = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)


def today():
    """Today when the test runs (a module constant would be a day off for a run that crosses midnight)."""
    return timezone.localdate()


def endpoint(url: str = "https://crm.example/hooks", *, events: list[str] | None = None, **kwargs) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=url, secret="whsec_test", event_types=events or [], **kwargs)


def fresh(delivery: WebhookDelivery) -> WebhookDelivery:
    return WebhookDelivery.objects.get(pk=delivery.pk)


class FakePost:
    """Stands in for http_post: answers with the given status codes (or raises the given exceptions) in turn,
    the last one forever, and records every call."""

    def __init__(self, *answers: int | BaseException) -> None:
        self.answers = list(answers) or [200]
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    def __call__(self, url: str, body: bytes, headers) -> HttpResult:
        self.calls.append((url, body, dict(headers)))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return HttpResult(answer, b"boom" if answer >= 300 else b"ok")


class Broker:
    """The Celery side while 'a broker is configured' (not eager): records what is enqueued, or refuses."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[int, str | None]] = []
        self.dispatches = 0
        self.down = False

    def deliver(self, delivery_id: int, token: str | None = None) -> None:
        if self.down:
            raise ConnectionRefusedError("broker down")
        self.deliveries.append((delivery_id, token))

    def dispatch(self) -> None:
        if self.down:
            raise ConnectionRefusedError("broker down")
        self.dispatches += 1


@pytest.fixture
def broker(monkeypatch) -> Iterator[Broker]:
    broker = Broker()
    monkeypatch.setattr(webhooks, "deliver_webhook", type("Task", (), {"delay": staticmethod(broker.deliver)}))
    monkeypatch.setattr(webhooks, "dispatch_webhooks", type("Task", (), {"delay": staticmethod(broker.dispatch)}))
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        yield broker
    finally:
        celery_app.conf.task_always_eager = eager


def emit_one(event_type: str = Event.BACKORDER_CREATED, now: datetime = T0) -> uuid.UUID | None:
    return webhook_emit(event_type=event_type, data={"backorder": {"id": 1, "sku": "MUG"}}, now=now)


# --- signing ------------------------------------------------------------------------------------------


def test_signature_matches_a_known_vector():
    body = webhook_body({"type": "backorder.created", "id": "evt", "data": {"sku": "MUG"}})

    assert body == b'{"data":{"sku":"MUG"},"id":"evt","type":"backorder.created"}'
    # printf '%s' '1700000000.<body>' | openssl dgst -sha256 -hmac whsec_test
    assert webhook_signature(secret="whsec_test", timestamp=1700000000, body=body) == (
        "t=1700000000,v1=354c7d6b320f86a5a12b089b06f9f8b49f659f13e34c520bfc6d49eee85b3427"
    )


def test_body_is_compact_sorted_ascii_json():
    assert webhook_body({"b": 1, "a": [1, "Thé"], "c": None}) == b'{"a":[1,"Th\\u00e9"],"b":1,"c":null}'


def test_each_attempt_sends_the_signed_headers_and_the_stored_payload_as_body():
    endpoint(events=[Event.BACKORDER_CREATED])
    event_id = emit_one()
    [delivery] = WebhookDelivery.objects.all()
    post = FakePost(200)

    assert webhook_deliver(delivery_id=delivery.pk, now=T0, post=post) == Status.DELIVERED

    [(url, body, headers)] = post.calls
    assert url == "https://crm.example/hooks"
    assert body == webhook_body(delivery.payload)
    assert headers == {
        "Content-Type": "application/json",
        "User-Agent": "BackorderBackOffice-Webhooks/1.0",
        "X-Webhook-Id": str(event_id),
        "X-Webhook-Event": "backorder.created",
        "X-Webhook-Timestamp": str(int(T0.timestamp())),
        "X-Webhook-Signature": webhook_signature(secret="whsec_test", timestamp=int(T0.timestamp()), body=body),
    }


# --- emitting -----------------------------------------------------------------------------------------


def test_emit_writes_one_delivery_per_active_subscribed_endpoint_all_with_the_same_event():
    everything = endpoint("https://a.example/")
    created_only = endpoint("https://b.example/", events=[Event.BACKORDER_CREATED])
    endpoint("https://c.example/", events=[Event.BACKORDER_FILLED, Event.ORDER_SHIPPED])
    endpoint("https://d.example/", active=False)

    event_id = webhook_emit(
        event_type=Event.BACKORDER_CREATED, data={"backorder": {"id": 7, "eta": date(2026, 12, 8)}}, now=T0
    )

    deliveries = list(WebhookDelivery.objects.order_by("endpoint__url"))
    assert [d.endpoint for d in deliveries] == [everything, created_only]
    assert {d.event_id for d in deliveries} == {event_id}
    assert {(d.status, d.attempts, d.event_type, d.next_attempt_at) for d in deliveries} == {
        (Status.PENDING, 0, "backorder.created", T0)
    }
    assert deliveries[0].payload == {
        "id": str(event_id),
        "type": "backorder.created",
        "created_at": "2026-11-22T09:30:00Z",
        "data": {"backorder": {"id": 7, "eta": "2026-12-08"}},
    }


def test_emit_many_gives_each_event_its_own_id_and_each_endpoint_a_copy():
    endpoint("https://a.example/")
    endpoint("https://b.example/")

    ids = webhook_emit_many(event_type=Event.BACKORDER_FILLED, events=[{"n": 1}, {"n": 2}, {"n": 3}], now=T0)

    assert len(set(ids)) == 3
    assert WebhookDelivery.objects.count() == 6
    for event_id, n in zip(ids, (1, 2, 3), strict=True):
        payloads = [d.payload for d in WebhookDelivery.objects.filter(event_id=event_id)]
        assert [p["data"] for p in payloads] == [{"n": n}, {"n": n}]


def test_an_event_nobody_wants_writes_nothing():
    endpoint(events=[Event.ORDER_SHIPPED])
    endpoint("https://off.example/", active=False)

    assert emit_one(Event.BACKORDER_CREATED) is None
    assert WebhookDelivery.objects.count() == 0


def test_a_rolled_back_transaction_writes_and_enqueues_nothing(broker, django_capture_on_commit_callbacks):
    endpoint()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        emit_one()
        raise RuntimeError("the order failed")

    assert WebhookDelivery.objects.count() == 0
    assert callbacks == []
    assert broker.deliveries == []


def test_deliveries_are_enqueued_on_commit_not_before(broker, django_capture_on_commit_callbacks):
    endpoint("https://a.example/")
    endpoint("https://b.example/")

    with django_capture_on_commit_callbacks(execute=True):
        emit_one()
        assert broker.deliveries == []  # not inside the transaction

    assert sorted(broker.deliveries) == sorted((d.pk, None) for d in WebhookDelivery.objects.all())


def test_a_large_batch_asks_for_one_dispatch_run_instead_of_a_message_each(broker, django_capture_on_commit_callbacks):
    endpoint()

    with django_capture_on_commit_callbacks(execute=True):
        webhook_emit_many(
            event_type=Event.BACKORDER_FILLED, events=[{"n": n} for n in range(ENQUEUE_ON_COMMIT_LIMIT + 1)]
        )

    assert (broker.deliveries, broker.dispatches) == ([], 1)


def test_embedded_mode_enqueues_nothing_from_the_request(django_capture_on_commit_callbacks, monkeypatch):
    assert celery_app.conf.task_always_eager  # the test settings are the embedded mode
    endpoint()
    post = FakePost(200)
    monkeypatch.setattr(webhooks, "http_post", post)

    with django_capture_on_commit_callbacks(execute=True):
        emit_one()

    assert post.calls == []
    assert WebhookDelivery.objects.get().status == Status.PENDING
    call_command("dispatch_webhooks", stdout=io.StringIO())  # what the embedded mode runs instead
    assert len(post.calls) == 1
    assert WebhookDelivery.objects.get().status == Status.DELIVERED


def test_broker_down_leaves_deliveries_pending_and_the_dispatcher_hands_them_over(
    broker, django_capture_on_commit_callbacks
):
    endpoint()
    broker.down = True
    with django_capture_on_commit_callbacks(execute=True):
        emit_one()  # on commit the broker refuses: logged, nothing raised
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.status, delivery.attempts, delivery.next_attempt_at) == (Status.PENDING, 0, T0)

    now = T0 + timedelta(minutes=1)
    assert webhooks_dispatch(now=now) == 0  # still down: the row is made due again at once
    assert fresh(delivery).next_attempt_at == now

    broker.down = False
    assert webhooks_dispatch(now=now) == 1
    [(delivery_id, token)] = broker.deliveries
    assert (delivery_id, token) == (delivery.pk, (now + QUEUE_LEASE).isoformat())
    assert webhooks_dispatch(now=now) == 0  # handed over: a second run does not hand it over again

    post = FakePost(200)
    assert webhook_deliver(delivery_id=delivery.pk, token=token, now=now, post=post) == Status.DELIVERED
    assert len(post.calls) == 1


# --- delivering: backoff, failure, lease, crash, tokens ---------------------------------------------


def test_retry_delay_doubles_from_30_seconds_up_to_an_hour():
    assert [retry_delay(n).total_seconds() for n in range(1, 10)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
    ]


def test_failures_back_off_exponentially_and_the_8th_marks_the_delivery_failed():
    endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()
    post = FakePost(500)
    now = T0
    schedule = []
    for attempt in range(1, MAX_ATTEMPTS):
        assert webhook_deliver(delivery_id=delivery.pk, now=now, post=post) == "retry"
        row = fresh(delivery)
        assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
            Status.PENDING,
            attempt,
            500,
            "HTTP 500: boom",
        )
        schedule.append((row.next_attempt_at - now).total_seconds())
        # Not due before its time: nothing is sent.
        assert webhook_deliver(delivery_id=delivery.pk, now=row.next_attempt_at - timedelta(seconds=1), post=post) == (
            "not_due"
        )
        now = row.next_attempt_at

    assert schedule == [30, 60, 120, 240, 480, 960, 1920]
    assert webhook_deliver(delivery_id=delivery.pk, now=now, post=post) == Status.FAILED
    row = fresh(delivery)
    assert (row.status, row.attempts, row.delivered_at) == (Status.FAILED, MAX_ATTEMPTS, None)
    assert len(post.calls) == MAX_ATTEMPTS
    assert webhook_deliver(delivery_id=delivery.pk, now=now + timedelta(days=1), post=post) == Status.FAILED
    assert len(post.calls) == MAX_ATTEMPTS


def test_a_network_error_is_a_failed_attempt_with_the_error_kept():
    endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()

    outcome = webhook_deliver(delivery_id=delivery.pk, now=T0, post=FakePost(ConnectionRefusedError(111, "refused")))

    row = fresh(delivery)
    assert outcome == "retry"
    assert (row.attempts, row.last_status_code, row.last_error) == (
        1,
        None,
        "ConnectionRefusedError: [Errno 111] refused",
    )
    assert row.next_attempt_at == T0 + timedelta(seconds=30)


def test_a_delivered_event_is_never_sent_again(broker):
    endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()
    post = FakePost(500, 204)
    webhook_deliver(delivery_id=delivery.pk, now=T0, post=post)
    later = T0 + timedelta(minutes=1)

    assert webhook_deliver(delivery_id=delivery.pk, now=later, post=post) == Status.DELIVERED
    row = fresh(delivery)
    assert (row.status, row.attempts, row.last_status_code, row.last_error, row.delivered_at) == (
        Status.DELIVERED,
        2,
        204,
        "",
        later,
    )
    assert webhook_deliver(delivery_id=delivery.pk, now=later + timedelta(hours=2), post=post) == Status.DELIVERED
    assert webhooks_dispatch(now=later + timedelta(hours=2)) == 0
    assert webhook_redeliver(delivery=delivery) is False
    assert len(post.calls) == 2


def test_while_a_post_is_in_flight_the_row_is_claimed_and_a_second_worker_sends_nothing():
    endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()
    seen = {}
    inner = FakePost(200)

    def post(url, body, headers):
        row = fresh(delivery)
        seen["row"] = (row.status, row.attempts, row.next_attempt_at)
        # Another worker (the dispatcher, a duplicate message) tries the same row meanwhile.
        seen["second"] = webhook_deliver(delivery_id=delivery.pk, now=T0 + timedelta(seconds=90), post=inner)
        return HttpResult(200, b"")

    assert webhook_deliver(delivery_id=delivery.pk, now=T0, post=post) == Status.DELIVERED
    assert seen == {"row": (Status.PENDING, 1, T0 + CLAIM_LEASE), "second": "not_due"}
    assert inner.calls == []
    assert fresh(delivery).attempts == 1


class WorkerKilled(BaseException):
    """Escapes every `except Exception`, like a worker process that dies mid-POST."""


def test_a_worker_that_dies_mid_post_leaves_the_delivery_to_be_retried_not_lost(broker):
    endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()

    with pytest.raises(WorkerKilled):
        webhook_deliver(delivery_id=delivery.pk, now=T0, post=FakePost(WorkerKilled()))

    row = fresh(delivery)
    assert (row.status, row.attempts, row.next_attempt_at) == (Status.PENDING, 1, T0 + CLAIM_LEASE)
    assert webhooks_dispatch(now=T0 + CLAIM_LEASE - timedelta(seconds=1)) == 0  # the lease still holds
    assert webhooks_dispatch(now=T0 + CLAIM_LEASE) == 1
    [(delivery_id, token)] = broker.deliveries
    post = FakePost(200)
    assert webhook_deliver(delivery_id=delivery_id, token=token, now=T0 + CLAIM_LEASE, post=post) == Status.DELIVERED
    assert (fresh(delivery).attempts, len(post.calls)) == (2, 1)


def test_a_last_attempt_that_never_reported_back_marks_the_delivery_failed():
    endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=MAX_ATTEMPTS, last_error="HTTP 502")
    post = FakePost(200)

    assert webhook_deliver(delivery_id=delivery.pk, now=T0 + timedelta(hours=1), post=post) == Status.FAILED

    row = fresh(delivery)
    assert row.status == Status.FAILED
    assert row.last_error == "Attempt 8 did not report back (worker stopped); gave up. Previous error: HTTP 502"
    assert post.calls == []


def test_deliveries_to_an_endpoint_deactivated_after_the_event_stop_and_can_be_redelivered_later():
    crm = endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()
    WebhookEndpoint.objects.filter(pk=crm.pk).update(active=False)
    post = FakePost(200)

    assert webhook_deliver(delivery_id=delivery.pk, now=T0, post=post) == Status.FAILED

    row = fresh(delivery)
    assert (row.status, row.attempts, row.last_error) == (Status.FAILED, 0, "Not sent: the endpoint was deactivated.")
    assert post.calls == []
    WebhookEndpoint.objects.filter(pk=crm.pk).update(active=True)
    assert webhook_redeliver(delivery=row, now=T0) is True
    assert webhook_deliver(delivery_id=delivery.pk, now=T0, post=post) == Status.DELIVERED


def test_a_stale_message_finds_the_row_not_due_and_only_the_current_token_sends(broker):
    endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()
    assert webhooks_dispatch(now=T0) == 1
    [(_, first_token)] = broker.deliveries
    later = T0 + QUEUE_LEASE  # the first message is still queued: a later run hands the row over again
    assert webhooks_dispatch(now=later) == 1
    [_, (_, second_token)] = broker.deliveries
    post = FakePost(200)

    assert webhook_deliver(delivery_id=delivery.pk, now=later, post=post) == "not_due"  # the on-commit message
    assert webhook_deliver(delivery_id=delivery.pk, token=first_token, now=later, post=post) == "not_due"
    assert webhook_deliver(delivery_id=delivery.pk, token=second_token, now=later, post=post) == Status.DELIVERED
    assert webhook_deliver(delivery_id=delivery.pk, token=second_token, now=later, post=post) == Status.DELIVERED
    assert len(post.calls) == 1


def test_a_timing_out_endpoint_holds_back_its_own_waiting_deliveries_but_no_one_elses():
    slow = endpoint("https://slow.example/")
    healthy = endpoint("https://healthy.example/")
    webhook_emit_many(event_type=Event.BACKORDER_FILLED, events=[{"n": n} for n in range(3)], now=T0)
    probe, *held = WebhookDelivery.objects.filter(endpoint=slow).order_by("pk")

    outcome = webhook_deliver(delivery_id=probe.pk, now=T0, post=FakePost(TimeoutError()))

    retry_at = T0 + timedelta(seconds=30)
    assert outcome == "retry"
    assert fresh(probe).last_error == "Timeout: timed out"
    assert [fresh(d).next_attempt_at for d in held] == [retry_at + PROBE_HEADSTART] * 2
    assert {d.next_attempt_at for d in WebhookDelivery.objects.filter(endpoint=healthy)} == {T0}
    assert {d.attempts for d in held} == {0}


def test_a_4xx_refusal_holds_back_nothing_else():
    refusing = endpoint("https://refusing.example/")
    webhook_emit_many(event_type=Event.BACKORDER_FILLED, events=[{"n": 1}, {"n": 2}], now=T0)
    first, second = WebhookDelivery.objects.filter(endpoint=refusing).order_by("pk")

    assert webhook_deliver(delivery_id=first.pk, now=T0, post=FakePost(422)) == "retry"

    assert (fresh(first).last_status_code, fresh(second).next_attempt_at) == (422, T0)


def test_redeliver_puts_a_failed_delivery_back_with_fresh_attempts_and_enqueues_it(
    broker, django_capture_on_commit_callbacks
):
    endpoint()
    emit_one()
    [delivery] = WebhookDelivery.objects.all()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(status=Status.FAILED, attempts=MAX_ATTEMPTS)

    with django_capture_on_commit_callbacks(execute=True):
        assert webhook_redeliver(delivery=delivery, now=T0 + timedelta(days=1)) is True

    row = fresh(delivery)
    assert (row.status, row.attempts, row.next_attempt_at) == (Status.PENDING, 0, T0 + timedelta(days=1))
    assert broker.deliveries == [(delivery.pk, None)]
    assert webhook_redeliver(delivery=row) is False  # pending: already being retried


# --- the events the back office emits ----------------------------------------------------------------


def deliveries_of(event_type: str) -> list[WebhookDelivery]:
    return list(WebhookDelivery.objects.filter(event_type=event_type).order_by("pk"))


def test_placing_an_order_emits_backorder_created_per_waiting_line_and_no_eta_change():
    endpoint()
    mug = ProductFactory(sku="MUG", lead_time_days=10)
    ProductFactory(sku="TEA", lead_time_days=5)
    stock(mug, WarehouseFactory(code="MAIN"), 1)

    order = place(("MUG", 3), ("TEA", 2), number="SO-1001", ship_by=today() + timedelta(days=20))

    created = deliveries_of(Event.BACKORDER_CREATED)
    assert [d.payload["data"]["backorder"]["sku"] for d in created] == ["MUG", "TEA"]
    mug_backorder = Backorder.objects.get(product=mug)
    assert created[0].payload["data"] == {
        "backorder": {
            "id": mug_backorder.pk,
            "order": "SO-1001",
            "sku": "MUG",
            "customer": order.customer.email,
            "quantity": 2,
            "original_quantity": 2,
            "status": "waiting",
            "eta": (today() + timedelta(days=11)).isoformat(),
            "eta_source": "lead_time",
            "priority": 0,
            "created_at": created[0].payload["data"]["backorder"]["created_at"],
            "placed_at": created[0].payload["data"]["backorder"]["placed_at"],
            "closed_at": None,
            "ship_by": (today() + timedelta(days=20)).isoformat(),
        }
    }
    assert deliveries_of(Event.BACKORDER_ETA_CHANGED) == []  # the first ETA is part of backorder.created


def test_an_eta_change_emits_the_previous_and_the_new_date_with_the_reason():
    endpoint(events=[Event.BACKORDER_ETA_CHANGED])
    ProductFactory(sku="MUG", lead_time_days=10)
    order = place(("MUG", 1))
    backorder = Backorder.objects.get(line__order=order)

    backorder_set_eta(
        backorders=[backorder], eta=today() + timedelta(days=30), reason="Supplier delay", acting_user=None
    )

    [changed] = deliveries_of(Event.BACKORDER_ETA_CHANGED)
    data = changed.payload["data"]
    assert (data["backorder"]["id"], data["backorder"]["eta"], data["backorder"]["eta_source"]) == (
        backorder.pk,
        (today() + timedelta(days=30)).isoformat(),
        "manual",
    )
    assert (data["previous_eta"], data["previous_eta_source"], data["reason"]) == (
        (today() + timedelta(days=11)).isoformat(),
        "lead_time",
        "Supplier delay",
    )


def test_a_first_eta_for_an_order_placed_earlier_is_a_change():
    endpoint(events=[Event.BACKORDER_ETA_CHANGED])
    ProductFactory(sku="MUG", lead_time_days=None)  # no lead time: no ETA when placed
    order = place(("MUG", 1))
    assert Backorder.objects.get(line__order=order).eta is None

    purchase_order(WarehouseFactory(code="MAIN"), ("MUG", 5), days=10)

    [changed] = deliveries_of(Event.BACKORDER_ETA_CHANGED)
    assert changed.payload["data"]["previous_eta"] is None
    assert changed.payload["data"]["backorder"]["eta_source"] == "purchase_order"


def test_a_fill_emits_backorder_filled_for_fully_filled_lines_only():
    endpoint(events=[Event.BACKORDER_FILLED])
    mug = ProductFactory(sku="MUG")
    first = place(("MUG", 2), number="SO-1")
    place(("MUG", 2), number="SO-2")

    stock_adjust_and_fill(product=mug, warehouse=WarehouseFactory(code="MAIN"), delta=3, reason="Delivery")

    [filled] = deliveries_of(Event.BACKORDER_FILLED)  # SO-2 got 1 of 2: still waiting, no event
    backorder = filled.payload["data"]["backorder"]
    assert (backorder["order"], backorder["status"], backorder["quantity"], backorder["original_quantity"]) == (
        first.number,
        "filled",
        0,
        2,
    )
    assert backorder["closed_at"] is not None


def test_cancelling_the_waiting_units_emits_backorder_cancelled():
    endpoint(events=[Event.BACKORDER_CANCELLED])
    ProductFactory(sku="MUG")
    order = place(("MUG", 3), number="SO-9")

    order_cancel(order=order, lines=[LineRequest("MUG", 1)])  # partial: still waiting
    assert deliveries_of(Event.BACKORDER_CANCELLED) == []
    order_cancel(order=order)

    [cancelled] = deliveries_of(Event.BACKORDER_CANCELLED)
    backorder = cancelled.payload["data"]["backorder"]
    assert (backorder["order"], backorder["status"], backorder["quantity"]) == ("SO-9", "cancelled", 0)


def test_shipping_through_the_workflow_emits_order_shipped():
    endpoint(events=[Event.ORDER_SHIPPED])
    mug = ProductFactory(sku="MUG")
    stock(mug, WarehouseFactory(code="MAIN"), 5)
    order = place(("MUG", 2), number="SO-7")

    shipment = order_ship_and_notify(order=order)

    [shipped] = deliveries_of(Event.ORDER_SHIPPED)
    data = shipped.payload["data"]
    assert data["order"] == {"number": "SO-7", "status": "shipped", "customer": order.customer.email}
    assert data["shipment"]["id"] == shipment.pk
    assert data["shipment"]["lines"] == [{"sku": "MUG", "quantity": 2, "warehouse": "MAIN"}]


def test_a_shipment_that_fails_announces_nothing():
    endpoint()
    ProductFactory(sku="MUG")
    order = place(("MUG", 1))  # nothing allocated
    before = WebhookDelivery.objects.count()

    with pytest.raises(NothingToShip):
        order_ship_and_notify(order=order)

    assert WebhookDelivery.objects.count() == before
    assert deliveries_of(Event.ORDER_SHIPPED) == []


def _fill_queries(lines: int, sku: str) -> int:
    product = ProductFactory(sku=sku, lead_time_days=10)
    waiting_queue(product, lines)
    po = purchase_order(WarehouseFactory(code=f"W-{sku}"), (sku, lines))
    with CaptureQueriesContext(connection) as ctx:
        purchase_order_receive(purchase_order=po, preview_limit=0)
    assert WebhookDelivery.objects.filter(event_type=Event.BACKORDER_FILLED, payload__data__backorder__sku=sku).count()
    return len(ctx.captured_queries)


def test_emitting_for_a_fill_costs_the_same_queries_for_3_or_40_lines():
    endpoint()
    endpoint("https://second.example/")
    assert _fill_queries(3, "FEW") == _fill_queries(40, "MANY")
    assert WebhookDelivery.objects.filter(event_type=Event.BACKORDER_FILLED).count() == 2 * 43


# --- admin and command ----------------------------------------------------------------------------------


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_admin_adds_an_endpoint_with_event_checkboxes_and_a_generated_secret(admin_client):
    add = reverse("admin:notifications_webhookendpoint_add")
    form = admin_client.get(add)
    assert form.status_code == 200
    content = form.content.decode()
    assert 'type="checkbox" name="event_types" value="backorder.eta_changed"' in content
    secret = form.context["adminform"].form.initial["secret"]
    assert secret.startswith("whsec_") and len(secret) > 40

    response = admin_client.post(
        add,
        {
            "url": "https://crm.example/hooks",
            "description": "CRM",
            "active": "on",
            "event_types": ["order.shipped", "backorder.created"],
            "secret": secret,
        },
    )

    assert response.status_code == 302
    saved = WebhookEndpoint.objects.get()
    assert (saved.url, saved.secret, saved.event_types) == (
        "https://crm.example/hooks",
        secret,
        ["backorder.created", "order.shipped"],
    )
    change = admin_client.get(reverse("admin:notifications_webhookendpoint_change", args=[saved.pk]))
    assert change.status_code == 200
    assert change.context["adminform"].form.initial["event_types"] == ["backorder.created", "order.shipped"]
    assert "Every delivery to this endpoint" in change.content.decode()
    bad = admin_client.post(add, {"url": "ftp://crm.example/", "secret": "x", "event_types": []})
    assert bad.context["adminform"].form.errors == {"url": ["Use an http:// or https:// URL."]}


def test_admin_send_test_event_queues_a_test_delivery_per_endpoint(admin_client):
    inactive = endpoint(active=False, events=[Event.ORDER_SHIPPED])

    response = admin_client.post(
        reverse("admin:notifications_webhookendpoint_changelist"),
        {"action": "send_test_event", "index": 0, ACTION_CHECKBOX_NAME: [inactive.pk]},
    )

    assert response.status_code == 302
    [delivery] = WebhookDelivery.objects.all()
    assert (delivery.endpoint, delivery.event_type, delivery.status) == (inactive, "webhook.test", Status.PENDING)
    assert delivery.payload["data"] == {"message": "A test event from the back office.", "endpoint": inactive.pk}
    first, hint = messages_of(response)
    assert first.startswith("1 test event queued for delivery: see the <a href=")
    assert "dispatch_webhooks" in hint  # the test settings are the embedded mode


def test_admin_delivery_log_lists_filters_and_redelivers_failed_ones(admin_client):
    crm = endpoint("https://crm.example/", description="CRM")
    other = endpoint("https://other.example/")
    emit_one()
    failed = WebhookDelivery.objects.get(endpoint=crm)
    WebhookDelivery.objects.filter(pk=failed.pk).update(
        status=Status.FAILED, attempts=8, last_status_code=503, last_error="HTTP 503: Service Unavailable"
    )
    pending = WebhookDelivery.objects.get(endpoint=other)
    changelist = reverse("admin:notifications_webhookdelivery_changelist")

    def listed(**params) -> set[int]:
        response = admin_client.get(changelist, params)
        assert response.status_code == 200
        return {d.pk for d in response.context["cl"].result_list}

    page = admin_client.get(changelist).content.decode()
    assert "HTTP 503: Service Unavailable" in page
    assert "backorder.created" in page
    assert listed(status__exact="failed") == {failed.pk}
    assert listed(endpoint__id__exact=other.pk) == {pending.pk}
    assert listed(event_type="backorder.created") == {failed.pk, pending.pk}
    assert listed(event=str(failed.event_id)) == {failed.pk, pending.pk}
    detail = admin_client.get(reverse("admin:notifications_webhookdelivery_change", args=[failed.pk]))
    assert detail.status_code == 200
    assert "&quot;backorder.created&quot;" in detail.content.decode()
    assert ">Redeliver</button>" in detail.content.decode()

    response = admin_client.post(
        changelist, {"action": "redeliver", "index": 0, ACTION_CHECKBOX_NAME: [failed.pk, pending.pk]}
    )

    assert messages_of(response)[0] == "1 failed delivery queued again."
    assert messages_of(response)[-1].startswith("1 delivery skipped: only failed deliveries are redelivered")
    assert (fresh(failed).status, fresh(failed).attempts) == (Status.PENDING, 0)


def test_endpoint_changelist_shows_pending_and_failed_counts(admin_client):
    crm = endpoint("https://crm.example/", events=[Event.BACKORDER_CREATED])
    emit_one()
    emit_one()
    WebhookDelivery.objects.filter(pk=WebhookDelivery.objects.first().pk).update(status=Status.FAILED)

    response = admin_client.get(reverse("admin:notifications_webhookendpoint_changelist"))

    [row] = response.context["cl"].result_list
    assert (row, row.pending, row.failed) == (crm, 1, 1)
    assert "backorder.created" in response.content.decode()


def test_dispatch_command_reports_how_many_it_handed_over(broker):
    endpoint()
    emit_one(now=timezone.now() - timedelta(seconds=1))
    out = io.StringIO()

    call_command("dispatch_webhooks", stdout=out)

    assert out.getvalue().strip() == "1 pending webhook delivery(ies) handed to the workers."
    assert len(broker.deliveries) == 1
