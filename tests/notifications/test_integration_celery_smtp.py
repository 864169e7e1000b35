"""Integration: a real Celery worker process on the real Redis delivers outbox rows to a real SMTP server on
loopback (aiosmtpd), sharing this test run's PostgreSQL database.

- A committed notification is enqueued on commit and arrives once, as multipart/alternative text + HTML.
- Broker down: the row stays pending and nothing is raised; `dispatch_notifications` later sends it once.
- SMTP down: attempts are counted, the row stays pending with the error, then `failed` after MAX_ATTEMPTS;
  once SMTP is back, a resend delivers exactly one message.

The worker runs `celery -A config worker` with DJANGO_SETTINGS_MODULE=config.settings.local and the
environment that settings read (DATABASE_URL = this run's test database, CELERY_BROKER_URL = a Redis
database of its own, EMAIL_URL = the aiosmtpd port). This process's Celery app is pointed at the same Redis
only inside `celery_on()`; elsewhere the test settings keep it eager.
"""

import contextlib
import email
import email.policy
import io
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from html import unescape
from pathlib import Path
from urllib.parse import quote, urlsplit

import kombu.pools
import pytest
import redis
from aiosmtpd.controller import Controller
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.test import Client
from django.utils import timezone

from backorders.status_links import status_url
from config.celery import app as celery_app
from notifications.models import Notification
from notifications.services import MAX_ATTEMPTS, DeliveryFailed, notification_resend, notification_send

from .factories import OrderLineFactory, create_notification

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BASE_DIR = Path(settings.BASE_DIR)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
WORKER_START_TIMEOUT = 60  # seconds
DELIVERY_TIMEOUT = 30  # seconds a message may take from commit to the SMTP server
GRACE = 1.0  # seconds to wait for a second delivery that must not come


def _redis_reachable() -> bool:
    try:
        redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1).ping()
    except redis.RedisError:
        return False
    return True


if not _redis_reachable():
    pytestmark.append(pytest.mark.skip(reason=f"needs Redis at {REDIS_HOST}:{REDIS_PORT}"))


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate: Callable[[], bool], timeout: float = DELIVERY_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


# --- the SMTP server --------------------------------------------------------------------------------


class Inbox:
    """aiosmtpd handler: keeps every message it is given (recipients, raw bytes)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        with self._lock:
            self._messages.append((list(envelope.rcpt_tos), envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[tuple[list[str], bytes]]:
        with self._lock:
            return list(self._messages)


class SmtpServer:
    """An aiosmtpd server on a fixed loopback port that a test can start late (SMTP down, then up)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> Inbox:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self.inbox

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture(scope="module")
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def smtp(smtp_port) -> Iterator[SmtpServer]:
    """Not started: call .start() (SMTP up) when the test wants it. Always stopped afterwards."""
    server = SmtpServer(smtp_port)
    try:
        yield server
    finally:
        server.stop()


# --- the broker and the worker ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker_url(django_db_setup) -> Iterator[str]:
    """A Redis database for this run only, chosen from the test database name (parallel runs use their own)."""
    test_database = connection.settings_dict["NAME"]
    db = 10 + zlib.crc32(test_database.encode()) % 6
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.flushdb()
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    finally:
        client.flushdb()
        client.close()


def _database_url() -> str:
    """DATABASE_URL of the database this test run uses (the test database, not the configured one)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{quote(db['NAME'], safe='')}"


@pytest.fixture(scope="module")
def worker(django_db_setup, broker_url, smtp_port, tmp_path_factory) -> Iterator[subprocess.Popen]:
    """A real `celery worker` process (solo pool) on the run's Redis database, test database and SMTP port.

    Yielded once it logs "ready" (INFO level, which also logs each task it receives: the log is shown when a
    test fails), so a slow start on a busy machine is not counted against a test's delivery timeout.
    """
    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker_url,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    celery = Path(sys.executable).with_name("celery")
    command = [str(celery)] if celery.exists() else [sys.executable, "-m", "celery"]
    command += ["-A", "config", "worker", "--pool=solo", "-Q", "celery", "--concurrency=1", "-l", "info"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    command += ["-n", f"notifications-it-{os.getpid()}@%h"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log_path  # type: ignore[attr-defined]
    try:
        started = wait_for(
            lambda: process.poll() is not None or " ready." in log_path.read_text(errors="replace"),
            timeout=WORKER_START_TIMEOUT,
        )
        if not started or process.poll() is not None:
            pytest.fail(f"the Celery worker did not start; its log:\n{worker_log(process)}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # warm shutdown: finish the current task, then exit
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def worker_log(worker: subprocess.Popen) -> str:
    return worker.log_path.read_text(errors="replace")[-4000:]  # type: ignore[attr-defined]


@contextlib.contextmanager
def celery_on(broker: str) -> Iterator[None]:
    """Point this process's Celery app at a real broker (not eager) for the block, then restore it.

    The app caches its broker connection pool and producer pool for the URL they were made with, so both are
    closed and dropped on the way in and out (kombu's registry too, or it would hand the closed pool back).
    """
    conf = celery_app.conf
    saved = (conf.task_always_eager, conf.broker_url)

    def drop_pools() -> None:
        kombu.pools.reset()
        celery_app._pool = None
        celery_app.amqp._producer_pool = None

    drop_pools()
    conf.task_always_eager, conf.broker_url = False, broker
    try:
        yield
    finally:
        drop_pools()
        conf.task_always_eager, conf.broker_url = saved


def fresh(notification: Notification) -> Notification:
    return Notification.objects.get(pk=notification.pk)


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


# --- tests ------------------------------------------------------------------------------------------


def test_a_real_worker_delivers_a_committed_notification_once_as_text_and_html(worker, broker_url, smtp):
    inbox = smtp.start()
    line = OrderLineFactory(order__number="IT-1001", order__customer__email="ann@example.com")
    link = status_url(line.order)

    with celery_on(broker_url), transaction.atomic():
        notification = create_notification(Notification.Kind.BACKORDER_CREATED, line=line, status_url=link)
        # enqueue_send runs on commit, at the end of this block

    assert wait_for(lambda: len(inbox.messages) >= 1), f"nothing delivered; worker log:\n{worker_log(worker)}"
    assert wait_for(lambda: fresh(notification).status == Notification.Status.SENT, timeout=10)
    time.sleep(GRACE)
    [(recipients, raw)] = inbox.messages
    assert recipients == ["ann@example.com"]
    message = parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Your order IT-1001: some items are on backorder"
    assert message["X-Notification-Id"] == str(notification.pk)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    assert link in text
    assert "- " + line.product.name in text
    [href] = {unescape(h) for h in re.findall(r'href="([^"]*/status/[^"]*)"', html)}
    assert href == link
    page = Client().get(urlsplit(href).path)  # the link opens this order's status page
    assert page.status_code == 200
    assert "IT-1001" in page.content.decode()
    row = fresh(notification)
    assert (row.status, row.attempts, row.last_error) == (Notification.Status.SENT, 1, "")


def test_broker_down_leaves_the_row_pending_then_the_dispatcher_sends_it_once(worker, broker_url, smtp):
    inbox = smtp.start()
    line = OrderLineFactory(order__number="IT-2002")

    closed = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with celery_on(closed), transaction.atomic():
        notification = create_notification(Notification.Kind.STATUS_UPDATE, line=line)
        # On commit, enqueue_send meets the dead broker: it logs, returns, raises nothing.

    row = fresh(notification)
    assert (row.status, row.attempts) == (Notification.Status.PENDING, 0)
    assert inbox.messages == []

    out = io.StringIO()
    with celery_on(broker_url):
        call_command("dispatch_notifications", stdout=out)
    assert out.getvalue().strip() == "1 pending notification(s) handed to the workers."

    assert wait_for(lambda: len(inbox.messages) >= 1), f"nothing delivered; worker log:\n{worker_log(worker)}"
    assert wait_for(lambda: fresh(notification).status == Notification.Status.SENT, timeout=10)
    with celery_on(broker_url):
        call_command("dispatch_notifications", stdout=io.StringIO())  # nothing pending: sends nothing
    time.sleep(GRACE)
    assert len(inbox.messages) == 1
    assert parse(inbox.messages[0][1])["X-Notification-Id"] == str(notification.pk)
    assert fresh(notification).attempts == 1


def test_smtp_down_retries_then_fails_and_a_resend_delivers_exactly_once(worker, broker_url, smtp, settings):
    # This process sends through SMTP to the worker's port, where nothing listens yet.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", smtp.port, 5
    now = timezone.now()
    # Scheduled a little ahead, so creating it enqueues nothing: this test drives every attempt itself.
    notification = create_notification(Notification.Kind.CANCELLATION_OFFER, scheduled_for=now + timedelta(minutes=1))
    now = notification.scheduled_for

    for attempt in range(1, MAX_ATTEMPTS):
        with pytest.raises(DeliveryFailed):
            notification_send(notification_id=notification.pk, now=now)
        row = fresh(notification)
        assert (row.status, row.attempts) == (Notification.Status.PENDING, attempt)
        assert row.last_error.startswith("ConnectionRefusedError")
        now = row.scheduled_for
    assert notification_send(notification_id=notification.pk, now=now) == Notification.Status.FAILED
    row = fresh(notification)
    assert (row.status, row.attempts, row.sent_at) == (Notification.Status.FAILED, MAX_ATTEMPTS, None)
    assert row.last_error.startswith("ConnectionRefusedError")

    inbox = smtp.start()
    with celery_on(broker_url):
        assert notification_resend(notification=row) is True  # enqueued on commit, sent by the worker

    assert wait_for(lambda: len(inbox.messages) >= 1), f"nothing delivered; worker log:\n{worker_log(worker)}"
    assert wait_for(lambda: fresh(notification).status == Notification.Status.SENT, timeout=10)
    time.sleep(GRACE)
    assert len(inbox.messages) == 1
    message = parse(inbox.messages[0][1])
    assert message["Subject"] == row.subject
    row = fresh(notification)
    assert (row.status, row.attempts, row.last_error) == (Notification.Status.SENT, 1, "")


def test_broker_down_while_an_order_is_placed_the_order_succeeds_and_the_email_is_sent_once_later(
    worker, broker_url, smtp
):
    from backorders.services import CustomerRequest, LineRequest, order_place
    from inventory.models import Product
    from orders.models import SalesOrder

    inbox = smtp.start()
    Product.objects.create(sku="IT-KETTLE", name="Stovetop kettle", lead_time_days=10)

    closed = f"redis://127.0.0.1:{free_port()}/0"
    with celery_on(closed):
        order = order_place(
            customer=CustomerRequest(email="broker-down@example.com", name="Dana"),
            lines=[LineRequest("IT-KETTLE", 2)],
        )  # commits; the on-commit enqueue meets the dead broker and gives up quietly

    assert SalesOrder.objects.filter(number=order.number, status="backordered").exists()
    [pending] = Notification.objects.filter(order=order)
    assert (pending.kind, pending.status) == ("backorder_created", Notification.Status.PENDING)

    with celery_on(broker_url):
        call_command("dispatch_notifications", stdout=io.StringIO())
        assert wait_for(lambda: fresh(pending).status == Notification.Status.SENT), worker_log(worker)
        call_command("dispatch_notifications", stdout=io.StringIO())
    time.sleep(GRACE)
    delivered = [parse(raw) for _, raw in inbox.messages]
    assert [m["X-Notification-Id"] for m in delivered] == [str(pending.pk)]
