"""The outbox: rows are written in the caller's transaction and sent after commit, at most once; a dedupe key
makes a second decision a no-op; SMTP errors back off, end as `failed`, and a resend sends exactly once; the
dispatcher sends what is pending and due."""

import io
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone

from notifications import services
from notifications.models import Notification
from notifications.services import (
    MAX_ATTEMPTS,
    DeliveryFailed,
    notification_resend,
    notification_send,
    notification_suppress,
    notifications_dispatch,
    retry_delay,
)
from notifications.tasks import send_notification

from .email_backends import REFUSING, RefusingEmailBackend
from .factories import STATUS_URL, NotificationFactory, OrderLineFactory, create_notification

pytestmark = pytest.mark.django_db


@pytest.fixture
def refusing_smtp(settings, monkeypatch):
    settings.EMAIL_BACKEND = REFUSING
    monkeypatch.setattr(RefusingEmailBackend, "tries", 0)
    return RefusingEmailBackend


def fresh(notification: Notification) -> Notification:
    return Notification.objects.get(pk=notification.pk)


# --- create and send --------------------------------------------------------------------------------


def test_a_notification_is_sent_once_after_commit_as_text_and_html(django_capture_on_commit_callbacks):
    line = OrderLineFactory(order__number="A-1001", order__customer__email="ann@example.com")

    with django_capture_on_commit_callbacks(execute=True) as callbacks, transaction.atomic():
        notification = create_notification(Notification.Kind.BACKORDER_CREATED, line=line)
        assert mail.outbox == []  # nothing leaves before the transaction commits

    assert len(callbacks) == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ann@example.com"]
    assert message.subject == "Your order A-1001: some items are on backorder"
    assert STATUS_URL in message.body
    [(html, mimetype)] = message.alternatives
    assert mimetype == "text/html" and STATUS_URL in html
    assert message.reply_to == ["support@demo-outfitters.example"]
    assert message.extra_headers["X-Notification-Id"] == str(notification.pk)
    assert message.extra_headers["Auto-Submitted"] == "auto-generated"
    row = fresh(notification)
    assert (row.status, row.attempts, row.last_error) == (Notification.Status.SENT, 1, "")
    assert row.sent_at is not None
    assert (row.subject, row.body_text, row.body_html) == (message.subject, message.body, html)


def test_a_rolled_back_transaction_leaves_no_row_and_sends_nothing(django_capture_on_commit_callbacks):
    line = OrderLineFactory()

    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        create_notification(line=line)
        raise RuntimeError("the change that caused it failed")

    assert callbacks == []
    assert Notification.objects.count() == 0
    assert mail.outbox == []


def test_sending_again_is_a_no_op():
    notification = NotificationFactory()
    assert notification_send(notification_id=notification.pk) == Notification.Status.SENT
    sent_at = fresh(notification).sent_at

    assert notification_send(notification_id=notification.pk) == Notification.Status.SENT
    assert send_notification.delay(notification.pk).get() == Notification.Status.SENT

    assert len(mail.outbox) == 1
    row = fresh(notification)
    assert (row.attempts, row.sent_at) == (1, sent_at)


def test_a_notification_not_yet_due_is_not_enqueued_nor_sent_until_due(django_capture_on_commit_callbacks):
    now = timezone.now()
    later = now + timedelta(minutes=30)

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        notification = create_notification(Notification.Kind.ETA_CHANGED, scheduled_for=later)

    assert callbacks == []
    assert notification_send(notification_id=notification.pk, now=now) == "not_due"
    assert mail.outbox == []
    assert fresh(notification).status == Notification.Status.PENDING
    assert notification_send(notification_id=notification.pk, now=later) == Notification.Status.SENT
    assert len(mail.outbox) == 1


def test_send_now_ignores_the_schedule():
    notification = NotificationFactory(scheduled_for=timezone.now() + timedelta(hours=1))

    assert notification_send(notification_id=notification.pk, ignore_schedule=True) == Notification.Status.SENT

    assert len(mail.outbox) == 1


def test_suppressed_and_missing_notifications_are_not_sent():
    notification = NotificationFactory()
    assert notification_suppress(notification=notification, reason="ETA moved back") is True
    assert notification_suppress(notification=notification, reason="again") is False

    assert notification_send(notification_id=notification.pk) == Notification.Status.SUPPRESSED
    assert notification_send(notification_id=notification.pk + 1000) == "missing"
    assert send_notification.delay(notification.pk + 1000).get() == "missing"

    assert mail.outbox == []
    assert fresh(notification).last_error == "ETA moved back"


def test_the_same_dedupe_key_creates_nothing_the_second_time(django_capture_on_commit_callbacks):
    line = OrderLineFactory()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        first = create_notification(line=line, dedupe_key="status_update:42:2026-12-01")
        second = create_notification(line=line, dedupe_key="status_update:42:2026-12-01")

    assert first is not None
    assert second is None
    assert len(callbacks) == 1
    assert list(Notification.objects.values_list("pk", flat=True)) == [first.pk]
    assert len(mail.outbox) == 1


def test_a_duplicate_key_does_not_break_the_callers_transaction():
    line = OrderLineFactory()
    create_notification(line=line, dedupe_key="k")

    with transaction.atomic():
        assert create_notification(line=line, dedupe_key="k") is None
        assert Notification.objects.filter(dedupe_key="k").count() == 1  # the transaction is still usable


# --- SMTP failures ----------------------------------------------------------------------------------


def test_smtp_errors_count_attempts_back_off_then_fail_and_a_resend_sends_exactly_once(
    refusing_smtp, settings, django_capture_on_commit_callbacks
):
    notification = NotificationFactory()
    now = timezone.now()

    for attempt in range(1, MAX_ATTEMPTS):
        with pytest.raises(DeliveryFailed):
            notification_send(notification_id=notification.pk, now=now)
        row = fresh(notification)
        assert (row.status, row.attempts) == (Notification.Status.PENDING, attempt)
        assert row.last_error == "SMTPConnectError: (421, 'Service not available (test backend)')"
        assert row.scheduled_for == now + retry_delay(attempt)
        assert notification_send(notification_id=notification.pk, now=now) == "not_due"  # backing off
        now = row.scheduled_for

    assert notification_send(notification_id=notification.pk, now=now) == Notification.Status.FAILED
    row = fresh(notification)
    assert (row.status, row.attempts, row.sent_at) == (Notification.Status.FAILED, MAX_ATTEMPTS, None)
    assert "SMTPConnectError" in row.last_error
    assert refusing_smtp.tries == MAX_ATTEMPTS
    assert notification_send(notification_id=notification.pk, now=now + timedelta(days=1)) == "failed"
    assert refusing_smtp.tries == MAX_ATTEMPTS  # a failed row is not tried again by itself

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    with django_capture_on_commit_callbacks(execute=True):
        assert notification_resend(notification=row) is True
    with django_capture_on_commit_callbacks(execute=True):
        assert notification_resend(notification=row) is False  # only a failed one is resent

    assert len(mail.outbox) == 1
    row = fresh(notification)
    assert (row.status, row.attempts) == (Notification.Status.SENT, 1)
    assert notifications_dispatch() == 0
    assert len(mail.outbox) == 1


def test_retry_delays_double_up_to_half_an_hour():
    assert [retry_delay(n).total_seconds() for n in range(1, 9)] == [30, 60, 120, 240, 480, 960, 1800, 1800]


def test_the_task_retry_does_not_spend_attempts_faster_than_the_backoff(
    refusing_smtp, django_capture_on_commit_callbacks
):
    # Eager Celery runs a retry at once; the row is not due again yet, so it is not tried again.
    with django_capture_on_commit_callbacks(execute=True):
        notification = create_notification()

    row = fresh(notification)
    assert (row.status, row.attempts) == (Notification.Status.PENDING, 1)
    assert refusing_smtp.tries == 1
    assert row.scheduled_for > timezone.now()
    assert notifications_dispatch() == 0  # not due: the dispatcher leaves it alone too
    assert refusing_smtp.tries == 1


def test_resend_only_touches_failed_notifications():
    pending = NotificationFactory()
    sent = NotificationFactory(status=Notification.Status.SENT, sent_at=timezone.now(), attempts=1)
    suppressed = NotificationFactory(status=Notification.Status.SUPPRESSED)

    for notification in (pending, sent, suppressed):
        before = fresh(notification)
        assert notification_resend(notification=notification) is False
        after = fresh(notification)
        assert (after.status, after.attempts, after.scheduled_for) == (
            before.status,
            before.attempts,
            before.scheduled_for,
        )


# --- the dispatcher ---------------------------------------------------------------------------------


def test_the_dispatcher_sends_what_is_pending_and_due_and_nothing_twice():
    now = timezone.now()
    due = [NotificationFactory(scheduled_for=now - timedelta(minutes=m)) for m in (5, 1)]
    later = NotificationFactory(scheduled_for=now + timedelta(minutes=10))
    NotificationFactory(status=Notification.Status.SENT, sent_at=now)
    NotificationFactory(status=Notification.Status.FAILED)
    NotificationFactory(status=Notification.Status.SUPPRESSED)

    assert notifications_dispatch(now=now) == 2

    assert sorted(m.extra_headers["X-Notification-Id"] for m in mail.outbox) == sorted(str(n.pk) for n in due)
    assert fresh(later).status == Notification.Status.PENDING
    assert notifications_dispatch(now=now) == 0
    assert len(mail.outbox) == 2


def test_the_dispatcher_honours_its_limit_oldest_first():
    now = timezone.now()
    oldest = NotificationFactory(scheduled_for=now - timedelta(hours=2))
    NotificationFactory(scheduled_for=now - timedelta(hours=1))

    assert notifications_dispatch(limit=1, now=now) == 1

    assert [m.extra_headers["X-Notification-Id"] for m in mail.outbox] == [str(oldest.pk)]


def test_the_dispatcher_stops_at_the_first_refusal_of_the_broker(monkeypatch):
    NotificationFactory.create_batch(3)
    tried: list[int] = []

    def broker_down(notification_id: int) -> bool:
        tried.append(notification_id)
        return False

    monkeypatch.setattr(services, "enqueue_send", broker_down)

    assert notifications_dispatch() == 0
    assert len(tried) == 1
    assert Notification.objects.filter(status=Notification.Status.PENDING).count() == 3


def test_dispatch_notifications_command():
    NotificationFactory.create_batch(2)

    out = io.StringIO()
    call_command("dispatch_notifications", stdout=out)

    assert out.getvalue().strip() == "2 pending notification(s) handed to the workers."
    assert len(mail.outbox) == 2
    assert Notification.objects.filter(status=Notification.Status.SENT).count() == 2
