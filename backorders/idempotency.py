"""Idempotency keys: a write retried with the same key runs once; every retry gets the first response.

Used by the API for the writes a flaky network must not repeat (placing an order, receiving a purchase
order). A key belongs to one caller (user) and expires `settings.IDEMPOTENCY_KEY_TTL_HOURS` after its
first use.

How a request with a key runs:

1. Claim: insert the (user, key) row with status in_progress, the endpoint and the request hash, in its
   own short transaction. The unique constraint decides a race (never check-then-create); the loser
   reads the winner's row. A row for a different endpoint or body answers 422 `idempotency_key_reused`;
   a completed row is replayed at once.
2. Run: in ONE transaction, lock the key row (`select_for_update`), then run the request and store its
   response in the row (status completed). The effect and the stored response commit together, so there
   is no moment where an order exists but its key does not say so. A concurrent retry blocks on the row
   lock until the first request commits, then finds it completed and replays it (on PostgreSQL it waits
   at most LOCK_WAIT_SECONDS, then answers 409 `idempotency_request_in_progress`; on SQLite writers are
   serialised by the database lock anyway).
3. Failure: if the request fails (a 4xx domain error, a validation error, a crash), its transaction rolls
   back, nothing is stored and the key is released (the row deleted): a failed request changed nothing,
   so a retry with the same key runs again and may succeed (stock may have arrived in between). Only
   successful (2xx) responses are replayed. A process that dies mid-request leaves the row in_progress
   but unlocked (its transaction rolled back); the next retry takes the lock and runs the request.

Lock order: the key row is locked before anything else the request locks (stock levels, lines,
backorders), and nothing takes a key lock after those, so it adds no deadlock cycle.
"""

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from inventory.exceptions import Conflict, DomainError

from .models import IdempotencyKey

# How long a retry waits for a concurrent request with the same key before answering 409 (PostgreSQL).
LOCK_WAIT_SECONDS: float = 10

# A claim released by a failing concurrent request is claimed again, at most this many times in all.
MAX_CLAIM_ATTEMPTS = 3

KEY_MAX_LENGTH = 255
# Visible ASCII, no spaces: what fits in an HTTP header unchanged (a UUID, a ULID, "order-1234-try").
KEY_PATTERN = r"^[!-~]{1,255}$"

_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL SQLSTATE of a lock_timeout


class IdempotencyKeyReused(DomainError):
    code = "idempotency_key_reused"
    http_status = 422


class IdempotencyRequestInProgress(Conflict):
    code = "idempotency_request_in_progress"


@dataclass(frozen=True)
class StoredResponse:
    """A response as replayed: status, a JSON-compatible body and the headers worth keeping (Location)."""

    status: int
    body: object
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def succeeded(self) -> bool:
        return 200 <= self.status < 300


def request_hash(body: object) -> str:
    """sha256 of the canonical JSON of a request body (keys sorted, no whitespace), as hex."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def idempotency_key_expiry_cutoff(*, now: datetime) -> datetime:
    """Keys first used at or before this instant have expired."""
    return now - timedelta(hours=settings.IDEMPOTENCY_KEY_TTL_HOURS)


def idempotent_call(
    *,
    user_id: int,
    key: str,
    endpoint: str,
    body: object,
    run: Callable[[], StoredResponse],
    now: datetime | None = None,
) -> tuple[StoredResponse, bool]:
    """Run `run` once per (user, key) within the key's lifetime; returns (response, replayed).

    `run` performs the request and returns its response; it is called inside a transaction that also
    stores that response (see the module docstring). Raises IdempotencyKeyReused when the key was first
    used for another endpoint or body, IdempotencyRequestInProgress when a concurrent request with the
    key does not finish in time.
    """
    now = now or timezone.now()
    fingerprint = request_hash(body)
    for _ in range(MAX_CLAIM_ATTEMPTS):
        record = _claim(user_id=user_id, key=key, endpoint=endpoint, fingerprint=fingerprint, now=now)
        if record is None:
            continue  # released by a failed request between our insert and our read: claim again
        if record.endpoint != endpoint or record.request_hash != fingerprint:
            other = f"for {record.endpoint}" if record.endpoint != endpoint else "with a different body"
            raise IdempotencyKeyReused(
                f"The Idempotency-Key {key!r} was already used {other}. Use a new key for a new request; "
                "repeat a request with its key only to retry it unchanged."
            )
        if record.status == IdempotencyKey.Status.COMPLETED:
            return _stored(record), True
        outcome = _run_claimed(record_id=record.pk, run=run)
        if outcome is not None:
            return outcome
    raise IdempotencyRequestInProgress(
        f"A request with the Idempotency-Key {key!r} is still being processed. Retry in a moment."
    )


def idempotency_keys_purge(*, now: datetime | None = None) -> int:
    """Delete every expired key (any caller); returns how many. Safe to run any time, e.g. nightly."""
    deleted, _ = IdempotencyKey.objects.filter(
        created_at__lte=idempotency_key_expiry_cutoff(now=now or timezone.now())
    ).delete()
    return deleted


def _claim(*, user_id: int, key: str, endpoint: str, fingerprint: str, now: datetime) -> IdempotencyKey | None:
    """This caller's row for `key`: a new in_progress one, or the one a previous request left."""
    # An expired key is forgotten: its next use starts afresh.
    IdempotencyKey.objects.filter(
        user_id=user_id, key=key, created_at__lte=idempotency_key_expiry_cutoff(now=now)
    ).delete()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(
                user_id=user_id, key=key, endpoint=endpoint, request_hash=fingerprint, created_at=now
            )
    except IntegrityError:
        return IdempotencyKey.objects.filter(user_id=user_id, key=key).first()


def _run_claimed(*, record_id: int, run: Callable[[], StoredResponse]) -> tuple[StoredResponse, bool] | None:
    """Lock the claimed row and run the request, storing its response; None when the claim is gone."""
    executed = False
    failed: StoredResponse | None = None
    try:
        with transaction.atomic():
            record = _lock(record_id)
            if record is None:
                return None
            if record.status == IdempotencyKey.Status.COMPLETED:
                return _stored(record), True
            executed = True
            response = run()
            if response.succeeded:
                record.status = IdempotencyKey.Status.COMPLETED
                record.response_status = response.status
                record.response_body = response.body
                record.response_headers = response.headers
                record.completed_at = timezone.now()
                record.save(
                    update_fields=["status", "response_status", "response_body", "response_headers", "completed_at"]
                )
                return response, False
            failed = response
            transaction.set_rollback(True)  # an error response changed nothing, and is not kept
    except BaseException as exc:
        if executed:
            _release(record_id)
        elif isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) == _LOCK_NOT_AVAILABLE:
            raise IdempotencyRequestInProgress(
                "A request with this Idempotency-Key is still being processed. Retry in a moment."
            ) from exc
        raise
    _release(record_id)
    return failed, False


def _lock(record_id: int) -> IdempotencyKey | None:
    """The key row, locked until the transaction ends (waiting at most LOCK_WAIT_SECONDS on PostgreSQL)."""
    rows = IdempotencyKey.objects.select_for_update(of=("self",)).filter(pk=record_id)
    if connection.vendor != "postgresql":
        return next(iter(list(rows)), None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout')")
        (previous,) = cursor.fetchone()
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [f"{round(LOCK_WAIT_SECONDS * 1000)}ms"])
        locked = list(rows)
        # Only this wait is bounded; the request's own locks (stock rows) wait as they always do.
        cursor.execute("SELECT set_config('lock_timeout', %s, true)", [previous])
    return next(iter(locked), None)


def _release(record_id: int) -> None:
    """Forget a claim whose request failed (only while no request has completed it)."""
    IdempotencyKey.objects.filter(pk=record_id, status=IdempotencyKey.Status.IN_PROGRESS).delete()


def _stored(record: IdempotencyKey) -> StoredResponse:
    return StoredResponse(
        status=record.response_status or 200, body=record.response_body, headers=dict(record.response_headers)
    )
