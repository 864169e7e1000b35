"""Outgoing webhooks: an outbox of signed JSON events, delivered by Celery, one task per delivery.

Knows how to store, sign and send an event, not when one happens (the backorders app decides that and calls
`webhook_emit` inside its own transaction). Receiving side: docs/WEBHOOKS.md.

The life of a delivery (one event for one endpoint, a WebhookDelivery row):

1. `webhook_emit` writes one row per active endpoint that wants the event, in the caller's transaction, all
   with the same event id, and hands them to Celery on commit (a broker outage leaves them pending).
2. `webhook_deliver` claims the row in a short transaction: it must be pending and due (or carry the
   dispatcher's token, see 4); `attempts` goes up by one and `next_attempt_at` becomes a lease
   (CLAIM_LEASE), so nobody else sends it meanwhile. The row lock is released before the HTTP call.
3. The POST runs outside any transaction (connect CONNECT_TIMEOUT, everything TOTAL_TIMEOUT), then a second
   short transaction records the result: 2xx = delivered (never sent again); anything else keeps the status
   code and error and sets the next attempt by exponential backoff; after MAX_ATTEMPTS the row is `failed`.
   A worker that dies mid-POST leaves the row pending with its lease, so it is retried when the lease ends:
   an event is delivered at least once, never lost; receivers dedupe by X-Webhook-Id.
4. `webhooks_dispatch` (every minute under beat) locks due pending rows with SKIP LOCKED, moves
   `next_attempt_at` to a queue lease and enqueues each with that timestamp as a token. A task whose token
   no longer matches (a newer dispatch, a claim, a deferral) finds the row not due and ends: a duplicate
   message never sends twice, and a backlog is not multiplied by every run.

One endpoint cannot hold up another: each delivery is its own task on the `webhooks` queue, no lock is held
while a POST waits, and when an endpoint times out or answers 5xx/408/429 its other waiting deliveries are
deferred behind the failed one's next attempt, so the queue does not fill with calls that would time out too.
"""

import hashlib
import hmac
import http.client
import json
import logging
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from celery import current_app, shared_task
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from .models import WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

Status = WebhookDelivery.Status

MAX_ATTEMPTS = 8
# After the n-th failed attempt a delivery waits RETRY_BACKOFF_SECONDS * 2**(n - 1), at most
# RETRY_BACKOFF_MAX_SECONDS: 30 s, 1 min, 2 min, ... 32 min; the 8th failure marks it failed (~64 min in all).
RETRY_BACKOFF_SECONDS = 30
RETRY_BACKOFF_MAX_SECONDS = 3600
CONNECT_TIMEOUT = 3.0  # seconds
TOTAL_TIMEOUT = 10.0  # seconds for the whole exchange
# A claimed delivery is not due again before this: longer than the task's hard time limit, so a slow POST
# is never sent a second time in parallel; a worker that died mid-POST is retried when it ends.
CLAIM_LEASE = timedelta(minutes=2)
# A delivery handed to the queue by the dispatcher is not handed over again before this (a busy queue).
QUEUE_LEASE = timedelta(minutes=5)
# More deliveries than this from one transaction are left to one dispatcher run, not enqueued one by one
# after the commit (a fill of thousands of lines must not publish thousands of messages in the request).
ENQUEUE_ON_COMMIT_LIMIT = 50
DISPATCH_LIMIT = 500
# Deferred deliveries of a troubled endpoint become due this long after the failed one's next attempt,
# so that one goes first and probes whether the endpoint is back.
PROBE_HEADSTART = timedelta(seconds=30)
MAX_RESPONSE_BYTES = 64 * 1024
ERROR_SNIPPET_CHARS = 500
USER_AGENT = "BackorderBackOffice-Webhooks/1.0"
SIGNATURE_SCHEME = "v1"
TEST_EVENT = "webhook.test"
# Status codes that say "the endpoint is in trouble" rather than "this event was refused".
_ENDPOINT_TROUBLE_CODES = {408, 429}


def retry_delay(attempts: int) -> timedelta:
    """How long a delivery waits after its `attempts`-th failed attempt (30 s doubling, at most 1 h)."""
    return timedelta(seconds=min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)))


# --- signing ------------------------------------------------------------------------------------------


def webhook_body(payload: Mapping[str, object]) -> bytes:
    """The exact bytes sent and signed: compact JSON, keys sorted, ASCII only (non-ASCII as \\u escapes)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("ascii")


def webhook_signature(*, secret: str, timestamp: int, body: bytes) -> str:
    """The X-Webhook-Signature value: `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},{SIGNATURE_SCHEME}={digest}"


def webhook_headers(*, delivery: WebhookDelivery, secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Webhook-Id": str(delivery.event_id),
        "X-Webhook-Event": delivery.event_type,
        "X-Webhook-Timestamp": str(timestamp),
        "X-Webhook-Signature": webhook_signature(secret=secret, timestamp=timestamp, body=body),
    }


# --- emitting -----------------------------------------------------------------------------------------


def webhook_endpoints_for(event_type: str) -> list[WebhookEndpoint]:
    """The active endpoints subscribed to `event_type` (one query). Callers check this before building data."""
    return [endpoint for endpoint in WebhookEndpoint.objects.filter(active=True) if endpoint.wants(event_type)]


def _json_ready(data: Mapping[str, object]) -> dict[str, object]:
    """Dates, datetimes, decimals and UUIDs as JSON strings (what is stored is exactly what is sent)."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def webhook_emit_many(
    *,
    event_type: str,
    events: Sequence[Mapping[str, object]],
    endpoints: Sequence[WebhookEndpoint] | None = None,
    now: datetime | None = None,
) -> list[uuid.UUID]:
    """Write one delivery per (event, subscribed endpoint) in the caller's transaction; enqueue them on commit.

    `events` are the `data` objects, one event each; every endpoint gets the same event id for an event.
    `endpoints` defaults to `webhook_endpoints_for(event_type)`. One INSERT for everything. Returns the
    event ids (empty when no endpoint wants the event: then nothing is written).
    """
    if endpoints is None:
        endpoints = webhook_endpoints_for(event_type)
    if not endpoints or not events:
        return []
    now = now or timezone.now()
    created_at = _json_ready({"t": now})["t"]
    event_ids: list[uuid.UUID] = []
    rows: list[WebhookDelivery] = []
    for data in events:
        event_id = uuid.uuid4()
        event_ids.append(event_id)
        payload = {"id": str(event_id), "type": event_type, "created_at": created_at, "data": _json_ready(data)}
        rows.extend(
            WebhookDelivery(
                endpoint=endpoint, event_type=event_type, event_id=event_id, payload=payload, next_attempt_at=now
            )
            for endpoint in endpoints
        )
    WebhookDelivery.objects.bulk_create(rows, batch_size=1000)
    transaction.on_commit(lambda: _enqueue_committed(count=len(rows), event_id__in=event_ids))
    return event_ids


def webhook_emit(*, event_type: str, data: Mapping[str, object], now: datetime | None = None) -> uuid.UUID | None:
    """Emit one event to every active endpoint that wants it (see webhook_emit_many); its id, or None."""
    event_ids = webhook_emit_many(event_type=event_type, events=[data], now=now)
    return event_ids[0] if event_ids else None


def webhook_send_test(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    """A `webhook.test` event for this endpoint only (active or not, whatever it subscribes to)."""
    now = timezone.now()
    event_id = uuid.uuid4()
    with transaction.atomic():
        delivery = WebhookDelivery.objects.create(
            endpoint=endpoint,
            event_type=TEST_EVENT,
            event_id=event_id,
            next_attempt_at=now,
            payload={
                "id": str(event_id),
                "type": TEST_EVENT,
                "created_at": _json_ready({"t": now})["t"],
                "data": {"message": "A test event from the back office.", "endpoint": endpoint.pk},
            },
        )
        transaction.on_commit(lambda: _enqueue_committed(count=1, pk=delivery.pk))
    return delivery


def webhooks_wait_for_dispatch() -> bool:
    """True in the embedded mode (no broker, tasks run eagerly): a task enqueued on commit would run inside the
    request, so nothing is enqueued then and `dispatch_webhooks` delivers what is pending."""
    return bool(current_app.conf.task_always_eager)


def _enqueue_committed(*, count: int, **lookup: object) -> None:
    """After commit: hand the pending deliveries matching `lookup` to Celery (or one dispatch run for many)."""
    if webhooks_wait_for_dispatch():
        # Embedded mode: delivering here would make the request wait for every endpoint. The rows are
        # pending and due; `manage.py dispatch_webhooks` delivers them.
        return
    if count > ENQUEUE_ON_COMMIT_LIMIT:
        enqueue_dispatch()
        return
    ids = WebhookDelivery.objects.filter(status=Status.PENDING, **lookup).values_list("pk", flat=True)
    for pk in ids:
        if not enqueue_delivery(pk):
            break  # the broker is down: every further try would wait for the same timeout


def enqueue_delivery(delivery_id: int, token: str | None = None) -> bool:
    """Hand one delivery to Celery; False (logged) when the broker is unreachable: the row stays pending and
    the dispatcher hands it over later."""
    try:
        deliver_webhook.delay(delivery_id, token)
    except Exception as exc:  # kombu raises several types for an unreachable broker
        logger.warning("Broker unavailable, webhook delivery %s stays pending: %s", delivery_id, exc)
        return False
    return True


def enqueue_dispatch() -> bool:
    try:
        dispatch_webhooks.delay()
    except Exception as exc:
        logger.warning("Broker unavailable, webhook dispatch left to the schedule: %s", exc)
        return False
    return True


# --- delivering ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpResult:
    status_code: int
    body: bytes


Post = Callable[[str, bytes, Mapping[str, str]], HttpResult]


def http_post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    total_timeout: float = TOTAL_TIMEOUT,
) -> HttpResult:
    """POST with the standard library: connect within `connect_timeout`, the whole exchange within
    `total_timeout` (each socket wait is bounded by what is left; the task's time limit is the backstop).
    Redirects are not followed (a 3xx is an answer like any other); at most MAX_RESPONSE_BYTES are read."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    deadline = time.monotonic() + total_timeout

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"no complete response within {total_timeout:g} s")
        return left

    timeout = min(connect_timeout, total_timeout)
    if parts.scheme == "https":
        context = ssl.create_default_context()
        connection = http.client.HTTPSConnection(parts.hostname, parts.port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        connection.connect()
        sock: socket.socket = connection.sock  # type: ignore[assignment]
        sock.settimeout(remaining())
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection.request("POST", target, body=body, headers=dict(headers))
        sock.settimeout(remaining())
        response = connection.getresponse()
        chunks: list[bytes] = []
        size = 0
        while size < MAX_RESPONSE_BYTES:
            sock.settimeout(remaining())
            chunk = response.read1(MAX_RESPONSE_BYTES - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return HttpResult(response.status, b"".join(chunks))
    finally:
        connection.close()


@dataclass(frozen=True)
class _Claim:
    delivery: WebhookDelivery
    url: str
    secret: str
    attempt: int


def _claim(delivery_id: int, *, now: datetime, token: str | None) -> _Claim | str:
    """Short transaction: take the row for one attempt (attempts + 1, a lease), or say why not."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return "locked" if WebhookDelivery.objects.filter(pk=delivery_id).exists() else "missing"
        if delivery.status != Status.PENDING:
            return delivery.status
        if delivery.attempts >= MAX_ATTEMPTS:
            # The last allowed attempt was claimed but never reported back (its worker died mid-POST).
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.FAILED,
                last_error=f"Attempt {delivery.attempts} did not report back (worker stopped); gave up. "
                f"Previous error: {delivery.last_error}"[:2000],
            )
            return Status.FAILED
        if not delivery.endpoint.active and delivery.event_type != TEST_EVENT:
            # Deactivated after the event: stop here; "Redeliver" sends it once the endpoint is active again.
            WebhookDelivery.objects.filter(pk=delivery.pk).update(
                status=Status.FAILED, last_error="Not sent: the endpoint was deactivated."
            )
            return Status.FAILED
        dispatched = token is not None and delivery.next_attempt_at == datetime.fromisoformat(token)
        if delivery.next_attempt_at > now and not dispatched:
            return "not_due"
        attempt = delivery.attempts + 1
        WebhookDelivery.objects.filter(pk=delivery.pk).update(attempts=attempt, next_attempt_at=now + CLAIM_LEASE)
        return _Claim(delivery, delivery.endpoint.url, delivery.endpoint.secret, attempt)


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"Timeout: {str(exc) or 'timed out'}"
    return f"{type(exc).__name__}: {exc}"


def _record(claim: _Claim, *, now: datetime, status_code: int | None, error: str, endpoint_trouble: bool) -> str:
    """Second short transaction: delivered, or an attempt counted with its error and the next try scheduled."""
    delivery = claim.delivery
    with transaction.atomic():
        row = WebhookDelivery.objects.select_for_update(of=("self",)).filter(pk=delivery.pk).first()
        if row is None:
            return "missing"
        if row.status != Status.PENDING:
            return row.status
        if not error:
            WebhookDelivery.objects.filter(pk=row.pk).update(
                status=Status.DELIVERED, delivered_at=now, last_status_code=status_code, last_error=""
            )
            return Status.DELIVERED
        if row.attempts != claim.attempt:
            return "superseded"  # our lease ran out and a newer attempt owns the row: it records its own result
        failed = claim.attempt >= MAX_ATTEMPTS
        retry_at = now + retry_delay(claim.attempt)
        WebhookDelivery.objects.filter(pk=row.pk).update(
            status=Status.FAILED if failed else Status.PENDING,
            last_status_code=status_code,
            last_error=error[:2000],
            next_attempt_at=retry_at,
        )
        if endpoint_trouble and not failed:
            # The endpoint is down or too slow: its other waiting deliveries go behind this one's retry, so the
            # queue does not fill with calls that would wait for the same timeout (and hold up other endpoints).
            WebhookDelivery.objects.filter(
                endpoint_id=delivery.endpoint_id, status=Status.PENDING, next_attempt_at__lt=retry_at
            ).exclude(pk=row.pk).update(next_attempt_at=retry_at + PROBE_HEADSTART)
        return Status.FAILED if failed else "retry"


def webhook_deliver(
    *, delivery_id: int, token: str | None = None, now: datetime | None = None, post: Post | None = None
) -> str:
    """Send one delivery at most once at a time. Returns 'delivered', 'retry', 'failed', or why nothing was sent
    ('missing', 'locked', 'not_due', 'delivered'/'failed' for a row already settled, 'superseded').

    `token`: the dispatcher's timestamp, which makes a row it leased due for this task. `now` pins the clock
    (the signature timestamp, the lease, the backoff); `post` replaces the HTTP client (tests).
    """
    claim = _claim(delivery_id, now=now or timezone.now(), token=token)
    if isinstance(claim, str):
        return claim
    sent_at = now or timezone.now()
    timestamp = int(sent_at.timestamp())
    body = webhook_body(claim.delivery.payload)
    headers = webhook_headers(delivery=claim.delivery, secret=claim.secret, timestamp=timestamp, body=body)
    status_code: int | None = None
    try:
        result = (post or http_post)(claim.url, body, headers)
    except Exception as exc:  # every network, TLS, protocol or URL error is one failed attempt
        error, trouble = _failure(exc), True
    else:
        status_code = result.status_code
        if 200 <= status_code < 300:
            error, trouble = "", False
        else:
            snippet = result.body[:ERROR_SNIPPET_CHARS].decode("utf-8", errors="replace").strip()
            error = f"HTTP {status_code}" + (f": {snippet}" if snippet else "")
            trouble = status_code >= 500 or status_code in _ENDPOINT_TROUBLE_CODES
    outcome = _record(claim, now=now or timezone.now(), status_code=status_code, error=error, endpoint_trouble=trouble)
    if outcome == "retry":
        logger.info("Webhook delivery %s attempt %s failed: %s", delivery_id, claim.attempt, error)
    elif outcome == Status.FAILED:
        logger.warning("Webhook delivery %s failed for good after %s attempts: %s", delivery_id, claim.attempt, error)
    return outcome


def webhooks_dispatch(*, limit: int = DISPATCH_LIMIT, now: datetime | None = None) -> int:
    """Hand every pending, due delivery to the workers (what a broker outage, a backoff or a crash held back).

    Locks a bounded batch with SKIP LOCKED (two dispatchers never take the same rows), leases it for
    QUEUE_LEASE and enqueues each row with the lease as its token after commit. Safe to run twice. If the
    broker refuses, the rest of the batch is made due again at once. Returns how many were enqueued.
    """
    now = now or timezone.now()
    stamp = now + QUEUE_LEASE
    with transaction.atomic():
        ids = list(
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=Status.PENDING, next_attempt_at__lte=now)
            .order_by("next_attempt_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=stamp)
    token = stamp.isoformat()
    for index, pk in enumerate(ids):
        if not enqueue_delivery(pk, token):
            WebhookDelivery.objects.filter(pk__in=ids[index:], next_attempt_at=stamp).update(next_attempt_at=now)
            return index
    return len(ids)


def webhook_redeliver(*, delivery: WebhookDelivery, now: datetime | None = None) -> bool:
    """Send a failed delivery again, attempts starting over; True if it was failed. A delivered one is never
    sent again, and a pending one is already being retried (it may be in flight: making it due now could send
    it twice at once)."""
    now = now or timezone.now()
    with transaction.atomic():
        updated = WebhookDelivery.objects.filter(pk=delivery.pk, status=Status.FAILED).update(
            status=Status.PENDING, attempts=0, next_attempt_at=now
        )
        if updated:
            transaction.on_commit(lambda: _enqueue_committed(count=1, pk=delivery.pk))
    return bool(updated)


# --- tasks ----------------------------------------------------------------------------------------------


class DeliveryRetry(Exception):
    """The attempt failed and the row is pending again; the task retries when it is due (the dispatcher would
    too: whichever comes first sends it, the other finds it not due)."""


@shared_task(
    name="webhooks.deliver",
    bind=True,
    autoretry_for=(DeliveryRetry,),
    retry_backoff=RETRY_BACKOFF_SECONDS,
    retry_backoff_max=RETRY_BACKOFF_MAX_SECONDS,
    retry_jitter=False,
    max_retries=MAX_ATTEMPTS,
    soft_time_limit=45,
    time_limit=60,  # < CLAIM_LEASE: a killed task's row is retried, never sent twice at once
    acks_late=True,
    ignore_result=True,
)
def deliver_webhook(self, delivery_id: int, token: str | None = None) -> str:
    """Deliver one webhook (idempotent: claimed under a lease, never re-sent once delivered)."""
    outcome = webhook_deliver(delivery_id=delivery_id, token=token)
    if outcome == "retry" and not self.request.is_eager:
        raise DeliveryRetry(f"webhook delivery {delivery_id} failed; retrying with backoff")
    return outcome


@shared_task(name="webhooks.dispatch", ignore_result=True, soft_time_limit=120, time_limit=180)
def dispatch_webhooks() -> int:
    """Enqueue what is pending and due (the safety net behind on-commit enqueueing); a full batch asks for
    another run at once, so a backlog drains without waiting a minute per batch."""
    count = webhooks_dispatch()
    if count >= DISPATCH_LIMIT and not webhooks_wait_for_dispatch():
        enqueue_dispatch()
    return count
