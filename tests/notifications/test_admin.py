"""The outbox in the admin: a constant-query changelist with filters and search, a read-only change page with a
sandboxed preview, and the Resend / Send now actions, which call the services and report counts."""

from datetime import timedelta

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification

from .email_backends import REFUSING
from .factories import NotificationFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:notifications_notification_changelist"


def change_url(notification: Notification) -> str:
    return reverse("admin:notifications_notification_change", args=[notification.pk])


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def run_action(client, action: str, notifications: list[Notification]):
    return client.post(
        reverse(CHANGELIST), {"action": action, "index": 0, ACTION_CHECKBOX_NAME: [n.pk for n in notifications]}
    )


def listed_pks(response) -> set[int]:
    return {n.pk for n in response.context["cl"].result_list}


def fresh(notification: Notification) -> Notification:
    return Notification.objects.get(pk=notification.pk)


def test_changelist_shows_the_columns_with_a_constant_number_of_queries(admin_client):
    failed = NotificationFactory(
        order__number="A-1001",
        status=Notification.Status.FAILED,
        attempts=5,
        last_error="SMTPConnectError: (421, 'Service not available, closing transmission channel')" * 2,
    )
    with CaptureQueriesContext(connection) as few:
        response = admin_client.get(reverse(CHANGELIST))
    NotificationFactory.create_batch(10)
    with CaptureQueriesContext(connection) as many:
        admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    content = response.content.decode()
    assert "A-1001" in content
    assert failed.to_email in content
    assert failed.subject in content
    assert "SMTPConnectError: (421, &#x27;Service not available, closing tra…<" in content
    assert len(many) == len(few)


def test_changelist_filters_by_status_kind_and_order_and_searches_email_subject_and_order_number(admin_client):
    failed = NotificationFactory(status=Notification.Status.FAILED, kind=Notification.Kind.DELAY_NOTICE)
    other = NotificationFactory(order__number="B-2002", to_email="bob@example.com", subject="Good news: in stock")

    def listed(**params) -> set[int]:
        response = admin_client.get(reverse(CHANGELIST), params)
        assert response.status_code == 200
        return listed_pks(response)

    assert listed(status="failed") == {failed.pk}
    assert listed(kind="delay_notice") == {failed.pk}
    assert listed(order="B-2002") == {other.pk}
    assert listed(q="B-2002") == {other.pk}
    assert listed(q="bob@example.com") == {other.pk}
    assert listed(q="good news") == {other.pk}
    assert listed() == {failed.pk, other.pk}


def test_change_page_is_read_only_and_previews_the_html_in_a_sandboxed_frame(admin_client):
    notification = NotificationFactory(
        body_html='<p>Hello "Ann"</p><script>alert(1)</script>', body_text="Hello <Ann>\n", last_error="boom"
    )

    response = admin_client.get(change_url(notification))

    assert response.status_code == 200
    content = response.content.decode()
    assert '<iframe sandbox="" srcdoc="&lt;p&gt;Hello &quot;Ann&quot;&lt;/p&gt;&lt;script&gt;alert(1)' in content
    assert "<script>alert(1)</script>" not in content
    assert "Hello &lt;Ann&gt;" in content
    assert "boom" in content
    assert 'name="subject"' not in content  # no editable field
    for action in ("Resend", "Send now"):
        assert f">{action}</button>" in content
    assert admin_client.post(change_url(notification), {"subject": "changed"}).status_code == 403
    assert fresh(notification).subject == notification.subject
    assert admin_client.get(reverse("admin:notifications_notification_add")).status_code == 403


def test_resend_sends_the_failed_ones_once_and_reports_the_others_as_skipped(
    admin_client, django_capture_on_commit_callbacks
):
    failed = NotificationFactory(status=Notification.Status.FAILED, attempts=5, last_error="SMTPConnectError")
    sent = NotificationFactory(status=Notification.Status.SENT, attempts=1, sent_at=timezone.now())
    pending = NotificationFactory()

    with django_capture_on_commit_callbacks(execute=True):
        response = run_action(admin_client, "resend", [failed, sent, pending])

    assert response.status_code == 302
    assert messages_of(response) == [
        "1 failed email queued for sending again.",
        "2 emails skipped: only failed emails are resent.",
    ]
    assert [m.extra_headers["X-Notification-Id"] for m in mail.outbox] == [str(failed.pk)]
    assert (fresh(failed).status, fresh(failed).attempts) == (Notification.Status.SENT, 1)
    assert fresh(sent).sent_at == sent.sent_at
    assert fresh(pending).status == Notification.Status.PENDING


def test_send_now_sends_pending_ones_even_before_their_time_and_skips_the_others(admin_client):
    quiet = NotificationFactory(scheduled_for=timezone.now() + timedelta(minutes=30))
    failed = NotificationFactory(status=Notification.Status.FAILED)

    response = run_action(admin_client, "send_now", [quiet, failed])

    assert messages_of(response) == ["1 email sent.", "1 email skipped: only pending emails are sent."]
    assert [m.extra_headers["X-Notification-Id"] for m in mail.outbox] == [str(quiet.pk)]
    assert fresh(quiet).status == Notification.Status.SENT
    assert fresh(failed).status == Notification.Status.FAILED


def test_send_now_reports_an_smtp_error_and_leaves_the_email_pending(admin_client, settings):
    settings.EMAIL_BACKEND = REFUSING
    notification = NotificationFactory()
    last_try = NotificationFactory(attempts=4)

    response = run_action(admin_client, "send_now", [notification, last_try])

    assert messages_of(response) == [
        f"1 email could not be sent and will be retried: #{notification.pk}: (421, 'Service not available (test "
        "backend)')",
        f"1 email failed on the last allowed attempt (#{last_try.pk}); see the error, then use Resend.",
    ]
    assert (fresh(notification).status, fresh(notification).attempts) == (Notification.Status.PENDING, 1)
    assert fresh(last_try).status == Notification.Status.FAILED
    assert mail.outbox == []


def test_the_action_button_on_the_change_page_returns_to_it(admin_client, django_capture_on_commit_callbacks):
    failed = NotificationFactory(status=Notification.Status.FAILED)

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            reverse(CHANGELIST),
            {"action": "resend", "index": 0, ACTION_CHECKBOX_NAME: [failed.pk], "next": change_url(failed)},
        )

    assert response.status_code == 302
    assert response["Location"] == change_url(failed)
    assert len(mail.outbox) == 1


def test_a_viewer_without_change_permission_sees_the_outbox_but_no_actions(client):
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_notification"))
    client.force_login(user)
    failed = NotificationFactory(status=Notification.Status.FAILED)

    changelist = client.get(reverse(CHANGELIST))
    change = client.get(change_url(failed))
    run_action(client, "resend", [failed])

    assert changelist.status_code == 200 and change.status_code == 200
    assert "Resend" not in changelist.content.decode()
    assert ">Resend</button>" not in change.content.decode()
    assert fresh(failed).status == Notification.Status.FAILED
    assert mail.outbox == []
