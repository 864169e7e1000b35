"""Webhooks over real HTTP: servers on loopback (http.server.ThreadingHTTPServer in a thread, port 0) that check
every signature with the verifier from docs/WEBHOOKS.md, executed as documented.

- A delivery arrives signed and verifiable; a receiver with another secret refuses it (a failed attempt).
- A failing (500) and a slow (past the timeout) endpoint are retried with backoff and finally marked failed,
  while a healthy endpoint's delivery of the same event arrives once, in the first round.
- A POST waiting on a slow endpoint holds no database lock and does not hold up another endpoint's delivery.
- End to end: an order placed through order_place with a backorder reaches the receiver as backorder.created.
- With a real Celery worker on Redis (the `webhooks` queue, two threads): an event committed in this process
  reaches a healthy endpoint while another endpoint's delivery of it is still stuck in its POST.

Every server is stopped in teardown; a slow handler is released first, so no thread outlives its test.
"""

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.utils import timezone

from notifications.models import WebhookDelivery, WebhookEndpoint
from notifications.webhooks import (
    MAX_ATTEMPTS,
    TOTAL_TIMEOUT,
    HttpResult,
    http_post,
    webhook_body,
    webhook_deliver,
    webhook_emit,
)

from ..backorders.factories import place
from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .test_integration_celery_smtp import (
    REDIS_HOST,
    REDIS_PORT,
    WORKER_START_TIMEOUT,
    _database_url,
    _redis_reachable,
    celery_on,
    wait_for,
)

Status = WebhookDelivery.Status
SECRET = "whsec_loopback_test_secret"
STUCK = 30  # seconds a slow handler waits at most for its test to release it
DOCS = Path(settings.BASE_DIR) / "docs" / "WEBHOOKS.md"


def documented_verifier() -> Callable[..., bool]:
    """The `verify` function from docs/WEBHOOKS.md, executed exactly as written there."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), flags=re.DOTALL)
    [source] = [block for block in blocks if "def verify(" in block]
    assert len(source.strip().splitlines()) <= 10, "the documented verifier should stay a 10-line recipe"
    namespace: dict[str, object] = {}
    exec(compile(source, str(DOCS), "exec"), namespace)
    return namespace["verify"]  # type: ignore[return-value]


verify = documented_verifier()


class Receiver:
    """A webhook receiver on 127.0.0.1:<free port>.

    behaviour "ok": verifies the signature with the documented recipe, 200 if it holds, else 401.
    "error": 500 with a body. "slow": waits until released (or STUCK seconds), then 200.
    Keeps every request (path, headers, body, verified) it got.
    """

    def __init__(self, behaviour: str = "ok", *, secret: str = SECRET) -> None:
        self.behaviour = behaviour
        self.secret = secret
        self.requests: list[dict[str, object]] = []
        self.arrived = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = dict(self.headers.items())
                verified = verify(receiver.secret, body, headers.get("X-Webhook-Signature", ""))
                with receiver._lock:
                    receiver.requests.append(
                        {"path": self.path, "headers": headers, "body": body, "verified": verified}
                    )
                receiver.arrived.set()
                if receiver.behaviour == "slow":
                    receiver.release.wait(STUCK)
                    status, reply = 200, b"finally"
                elif receiver.behaviour == "error":
                    status, reply = 500, b"boom"
                else:
                    status, reply = (200, b"ok") if verified else (401, b"bad signature")
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the client gave up (timeout): nothing to answer

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name=f"receiver-{behaviour}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/{self.behaviour}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def start(self) -> "Receiver":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture
def receivers() -> Iterator[Callable[..., Receiver]]:
    """receivers("ok" | "error" | "slow", secret=...) -> a started Receiver; all are stopped afterwards."""
    started: list[Receiver] = []

    def start(behaviour: str = "ok", **kwargs) -> Receiver:
        receiver = Receiver(behaviour, **kwargs).start()
        started.append(receiver)
        return receiver

    try:
        yield start
    finally:
        for receiver in started:
            receiver.stop()


def endpoint_for(receiver: Receiver, **kwargs) -> WebhookEndpoint:
    return WebhookEndpoint.objects.create(url=receiver.url, secret=SECRET, description=receiver.behaviour, **kwargs)


def delivery_to(endpoint: WebhookEndpoint) -> WebhookDelivery:
    return WebhookDelivery.objects.get(endpoint=endpoint)


# --- one process, real HTTP --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_real_server_receives_the_signed_event_and_verifies_it_with_the_documented_recipe(receivers):
    healthy = receivers("ok")
    impostor = receivers("ok", secret="whsec_another_secret")  # knows a different secret: refuses
    good, bad = endpoint_for(healthy), endpoint_for(impostor)
    event_id = webhook_emit(event_type="backorder.filled", data={"backorder": {"id": 5, "sku": "MUG", "name": "Thé"}})

    call_command("dispatch_webhooks", stdout=io.StringIO())  # embedded mode: delivers right here

    [request] = healthy.requests
    delivery = delivery_to(good)
    assert request["verified"] is True
    assert request["path"] == "/hooks/ok"
    assert request["body"] == webhook_body(delivery.payload)
    assert json.loads(request["body"]) == delivery.payload
    headers = request["headers"]
    assert (headers["Content-Type"], headers["X-Webhook-Id"], headers["X-Webhook-Event"]) == (
        "application/json",
        str(event_id),
        "backorder.filled",
    )
    assert headers["X-Webhook-Signature"].startswith(f"t={headers['X-Webhook-Timestamp']},v1=")
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (Status.DELIVERED, 1, 200)

    [refused] = impostor.requests
    assert refused["verified"] is False
    rejected = delivery_to(bad)
    assert (rejected.status, rejected.attempts, rejected.last_status_code, rejected.last_error) == (
        Status.PENDING,
        1,
        401,
        "HTTP 401: bad signature",
    )


@pytest.mark.django_db
def test_failing_and_slow_endpoints_are_retried_then_failed_while_a_healthy_one_gets_the_event_once(receivers):
    failing, slow, healthy = receivers("error"), receivers("slow"), receivers("ok")
    failing_endpoint, slow_endpoint, healthy_endpoint = endpoint_for(failing), endpoint_for(slow), endpoint_for(healthy)
    start = timezone.now()
    webhook_emit(event_type="order.shipped", data={"order": {"number": "SO-1"}}, now=start)

    def post(url: str, body: bytes, headers) -> HttpResult:
        # A short total timeout for the slow endpoint only (it never answers within it); the others get the default.
        return http_post(url, body, headers, total_timeout=0.3 if url == slow.url else TOTAL_TIMEOUT)

    # The dispatcher's rounds, with the clock moved to each next due time (no waiting on the wall clock).
    now, rounds = start, 0
    while WebhookDelivery.objects.filter(status=Status.PENDING).exists():
        for delivery in WebhookDelivery.objects.filter(status=Status.PENDING, next_attempt_at__lte=now).order_by("pk"):
            webhook_deliver(delivery_id=delivery.pk, now=now, post=post)
        rounds += 1
        if rounds == 1:  # the first round: the healthy endpoint has it, the others wait for their retry
            assert (healthy.count, delivery_to(healthy_endpoint).status) == (1, Status.DELIVERED)
            assert delivery_to(healthy_endpoint).delivered_at == start
        pending = WebhookDelivery.objects.filter(status=Status.PENDING).order_by("next_attempt_at").first()
        now = pending.next_attempt_at if pending else now
        assert rounds <= MAX_ATTEMPTS

    assert rounds == MAX_ATTEMPTS
    failed = delivery_to(failing_endpoint)
    assert (failed.status, failed.attempts, failed.last_status_code, failed.last_error) == (
        Status.FAILED,
        MAX_ATTEMPTS,
        500,
        "HTTP 500: boom",
    )
    timed_out = delivery_to(slow_endpoint)
    assert (timed_out.status, timed_out.attempts, timed_out.last_status_code) == (Status.FAILED, MAX_ATTEMPTS, None)
    assert timed_out.last_error.startswith("Timeout: ")
    assert (failing.count, slow.count) == (MAX_ATTEMPTS, MAX_ATTEMPTS)
    assert healthy.count == 1  # exactly once, never again
    assert [r["verified"] for r in healthy.requests] == [True]
    assert delivery_to(healthy_endpoint).attempts == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_post_stuck_on_a_slow_endpoint_holds_no_lock_and_does_not_hold_up_another_endpoint(receivers):
    slow, healthy = receivers("slow"), receivers("ok")
    slow_endpoint, healthy_endpoint = endpoint_for(slow), endpoint_for(healthy)
    webhook_emit(event_type="backorder.created", data={"backorder": {"id": 1}})  # autocommit: committed
    outcome: dict[str, str] = {}

    def worker() -> None:  # a worker process of its own, in effect (its own database connection)
        try:
            outcome["slow"] = webhook_deliver(delivery_id=delivery_to(slow_endpoint).pk)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert slow.arrived.wait(10), "the slow endpoint was never called"
        # Mid-POST: the claim is committed (attempt 1, under a lease) and no row lock is held.
        with transaction.atomic():
            claimed = WebhookDelivery.objects.select_for_update(nowait=True).get(endpoint=slow_endpoint)
        assert (claimed.status, claimed.attempts) == (Status.PENDING, 1)
        assert claimed.next_attempt_at > timezone.now()
        # Another endpoint's delivery of the same event goes through meanwhile.
        assert webhook_deliver(delivery_id=delivery_to(healthy_endpoint).pk) == Status.DELIVERED
        assert healthy.count == 1
        assert thread.is_alive() and slow.count == 1  # the slow POST is still waiting
    finally:
        slow.release.set()
        thread.join(timeout=20)
    assert outcome == {"slow": Status.DELIVERED}
    assert delivery_to(slow_endpoint).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_an_order_with_a_backorder_reaches_the_receiver_as_backorder_created(receivers):
    receiver = receivers("ok")
    endpoint_for(receiver)  # committed before the order (transaction=True: no test transaction around it)
    mug = ProductFactory(sku="MUG-RED", lead_time_days=10)
    stock(mug, WarehouseFactory(code="MAIN"), 1)

    order = place(("MUG-RED", 3), number="SO-E2E-1")  # commits; on commit the embedded mode enqueues nothing
    assert receiver.count == 0
    call_command("dispatch_webhooks", stdout=io.StringIO())

    [request] = receiver.requests
    assert request["verified"] is True
    assert request["headers"]["X-Webhook-Event"] == "backorder.created"
    event = json.loads(request["body"])
    assert event["type"] == "backorder.created"
    backorder = event["data"]["backorder"]
    assert (backorder["order"], backorder["sku"], backorder["quantity"], backorder["status"]) == (
        order.number,
        "MUG-RED",
        2,
        "waiting",
    )
    assert backorder["customer"] == order.customer.email
    assert WebhookDelivery.objects.get().status == Status.DELIVERED


# --- a real Celery worker on the webhooks queue ---------------------------------------------------------


needs_redis = pytest.mark.skipif(not _redis_reachable(), reason=f"needs Redis at {REDIS_HOST}:{REDIS_PORT}")


@pytest.fixture(scope="module")
def webhook_broker_url(django_db_setup) -> Iterator[str]:
    """A Redis database for this run's webhook worker (6-9: not the 10-15 the email integration test flushes),
    chosen from the test database name so parallel runs with other databases use other ones."""
    db = 6 + zlib.crc32(connection.settings_dict["NAME"].encode()) % 4
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db)
    client.delete("webhooks")
    try:
        yield f"redis://{REDIS_HOST}:{REDIS_PORT}/{db}"
    finally:
        client.delete("webhooks")
        client.close()


@pytest.fixture(scope="module")
def webhook_worker(django_db_setup, webhook_broker_url, tmp_path_factory) -> Iterator[subprocess.Popen]:
    """`celery worker -Q webhooks` with two threads (as the Procfile's worker-webhooks, smaller)."""
    log_path = tmp_path_factory.mktemp("celery-webhooks") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.local",
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": webhook_broker_url,
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }
    celery = Path(sys.executable).with_name("celery")
    command = [str(celery)] if celery.exists() else [sys.executable, "-m", "celery"]
    command += ["-A", "config", "worker", "--pool=threads", "--concurrency=2", "-Q", "webhooks", "-l", "info"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-n", f"webhooks-it-{os.getpid()}@%h"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log_path  # type: ignore[attr-defined]
    try:
        started = wait_for(
            lambda: process.poll() is not None or " ready." in log_path.read_text(errors="replace"),
            timeout=WORKER_START_TIMEOUT,
        )
        if not started or process.poll() is not None:
            pytest.fail(f"the Celery worker did not start; its log:\n{log_path.read_text(errors='replace')[-4000:]}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@needs_redis
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_to_a_healthy_endpoint_while_another_is_stuck(
    receivers, webhook_worker, webhook_broker_url
):
    slow, healthy = receivers("slow"), receivers("ok")
    slow_endpoint, healthy_endpoint = endpoint_for(slow), endpoint_for(healthy)  # the slow one is first in line

    with celery_on(webhook_broker_url), transaction.atomic():
        webhook_emit(event_type="backorder.created", data={"backorder": {"id": 9, "order": "SO-IT-1"}})
        # each delivery is enqueued on commit, at the end of this block, as its own task

    log = webhook_worker.log_path  # type: ignore[attr-defined]
    try:
        assert wait_for(lambda: healthy.count >= 1 and slow.arrived.is_set()), log.read_text(errors="replace")
        assert wait_for(lambda: delivery_to(healthy_endpoint).status == Status.DELIVERED, timeout=10)
        assert delivery_to(slow_endpoint).status == Status.PENDING  # its POST is still waiting
    finally:
        slow.release.set()
    assert wait_for(lambda: delivery_to(slow_endpoint).status == Status.DELIVERED), log.read_text(errors="replace")
    assert (healthy.count, slow.count) == (1, 1)
    assert [r["verified"] for r in healthy.requests + slow.requests] == [True, True]
