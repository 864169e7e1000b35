"""Outbox writes and delivery. Knows how to render, store and send a message — not when one is due
(the backorders app decides that and calls notification_create inside its own transaction)."""

import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, connection, transaction
from django.template.loader import render_to_string
from django.utils import timezone

from inventory.dbutils import Statement
from orders.models import Customer, OrderLine, SalesOrder

from .models import Notification

logger = logging.getLogger(__name__)

_BLANK_LINES = re.compile(r"\n{3,}")

MAX_ATTEMPTS = 5
# After a failed attempt the row is not due again for RETRY_BACKOFF_SECONDS * 2**(attempts - 1), at most
# RETRY_BACKOFF_MAX_SECONDS: the task's own retry (same numbers, tasks.py) and the dispatcher then agree on
# when to try again, so a minutely dispatcher cannot burn through MAX_ATTEMPTS during a short SMTP outage.
RETRY_BACKOFF_SECONDS = 30
RETRY_BACKOFF_MAX_SECONDS = 1800


def retry_delay(attempts: int) -> timedelta:
    """How long a row waits after its `attempts`-th failed attempt (30 s, 1 min, 2 min, ... at most 30 min)."""
    return timedelta(seconds=min(RETRY_BACKOFF_MAX_SECONDS, RETRY_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)))


def render(kind: str, context: Mapping[str, object]) -> tuple[str, str, str]:
    """(subject, text, html) from templates/notifications/<kind>/{subject.txt, body.txt, body.html}.

    The context each kind expects is documented in templates/notifications/README.md; shop_name,
    support_email and kind are added here. The .txt templates turn autoescaping off themselves.
    """
    full = {
        "shop_name": settings.SHOP_NAME,
        "support_email": settings.SHOP_SUPPORT_EMAIL,
        "kind": kind,
        **context,
    }
    subject = " ".join(render_to_string(f"notifications/{kind}/subject.txt", full).split())
    text = render_to_string(f"notifications/{kind}/body.txt", full)
    # Template tags leave trailing spaces and runs of blank lines behind; a plain-text email shows them.
    text = _BLANK_LINES.sub("\n\n", "\n".join(line.rstrip() for line in text.strip().splitlines())) + "\n"
    html = render_to_string(f"notifications/{kind}/body.html", full)
    return subject, text, html


def notification_create(
    *,
    kind: str,
    customer: Customer,
    dedupe_key: str,
    context: Mapping[str, object],
    order: SalesOrder | None = None,
    line: OrderLine | None = None,
    scheduled_for: datetime | None = None,
    data: Mapping[str, object] | None = None,
) -> Notification | None:
    """Render and store a notification; None if one with this dedupe key already exists.

    Call inside the transaction of the change that causes it: the row commits or rolls back with it,
    and sending is enqueued only after commit (a broker outage leaves it pending for the dispatcher).
    """
    subject, text, html = render(kind, {"customer": customer, "order": order, "line": line, **context})
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                kind=kind,
                customer=customer,
                order=order,
                line=line,
                dedupe_key=dedupe_key,
                to_email=customer.email,
                subject=subject,
                body_text=text,
                body_html=html,
                scheduled_for=scheduled_for or timezone.now(),
                data=dict(data or {}),
            )
    except IntegrityError:
        if Notification.objects.filter(dedupe_key=dedupe_key).exists():
            return None
        raise
    if notification.scheduled_for <= timezone.now():
        transaction.on_commit(lambda: enqueue_send(notification.pk))
    return notification


@dataclass(frozen=True)
class NotificationSpec:
    kind: str
    customer: Customer
    dedupe_key: str
    context: Mapping[str, object]
    order: SalesOrder | None = None
    line: OrderLine | None = None
    scheduled_for: datetime | None = None
    data: Mapping[str, object] | None = None


def notification_create_many(specs: Sequence[NotificationSpec]) -> int:
    """Render and store many notifications in one INSERT (existing dedupe keys are skipped); each new one is
    enqueued after commit. For fills that serve thousands of lines at once. Returns how many were new."""
    if not specs:
        return 0
    now = timezone.now()
    keys = [spec.dedupe_key for spec in specs]
    existing = set(Notification.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
    rows = []
    for spec in specs:
        if spec.dedupe_key in existing:
            continue
        existing.add(spec.dedupe_key)
        subject, text, html = render(
            spec.kind, {"customer": spec.customer, "order": spec.order, "line": spec.line, **spec.context}
        )
        rows.append(
            Notification(
                kind=spec.kind,
                customer=spec.customer,
                order=spec.order,
                line=spec.line,
                dedupe_key=spec.dedupe_key,
                to_email=spec.customer.email,
                subject=subject,
                body_text=text,
                body_html=html,
                scheduled_for=spec.scheduled_for or now,
                data=dict(spec.data or {}),
            )
        )
    Notification.objects.bulk_create(rows, ignore_conflicts=True)
    new_keys = [row.dedupe_key for row in rows]

    def enqueue() -> None:
        due = Notification.objects.filter(
            dedupe_key__in=new_keys, status=Notification.Status.PENDING, scheduled_for__lte=timezone.now()
        )
        for pk in due.values_list("pk", flat=True):
            enqueue_send(pk)

    if new_keys:
        transaction.on_commit(enqueue)
    return len(rows)


# Deferred rendering: a change that writes thousands of emails at once (a receipt filling a long queue) stores
# the rows unrendered, and the worker that sends them renders them in bulk. The app that decides a kind of
# email registers how to build its template context from the stored rows (customer, order, line, data).
ContextBuilder = Callable[[Sequence[Notification]], Mapping[int, Mapping[str, object]]]
_CONTEXT_BUILDERS: dict[str, ContextBuilder] = {}

# A task sends at most this many notifications (a bulk insert enqueues one task per chunk, not one per row).
SEND_CHUNK = 200


def register_context_builder(kind: str, builder: ContextBuilder) -> None:
    """`builder(notifications)` returns {notification pk: template context} for unrendered rows of `kind`."""
    _CONTEXT_BUILDERS[kind] = builder


@dataclass(frozen=True)
class DeferredRow:
    """One email whose content is rendered later, from its customer, order and line."""

    customer_id: int
    to_email: str
    order_id: int | None
    line_id: int | None
    dedupe_key: str
    data: Mapping[str, object] | None = None  # facts decided now that the context builder needs later


# The outbox row of an email stored unrendered: the columns both deferred INSERTs write, in this order.
_DEFERRED_INSERT = (
    f'INSERT INTO "{Notification._meta.db_table}" (kind, status, customer_id, to_email, order_id, line_id, '
    "dedupe_key, subject, body_text, body_html, attempts, last_error, scheduled_for, data, rendered, created_at)"
)


def notification_create_deferred(*, kind: str, rows: Sequence[DeferredRow]) -> int:
    """Store many emails of `kind` to be rendered when sent: one INSERT (PostgreSQL: one statement with array
    parameters), existing dedupe keys skipped, then one send task per SEND_CHUNK new rows after commit.

    Call inside the transaction of the change; `kind` must have a registered context builder. Returns how
    many were new."""
    statement = notification_create_deferred_statement(kind=kind, rows=rows)
    return statement.run() if statement is not None else 0


def notification_create_deferred_statement(*, kind: str, rows: Sequence[DeferredRow]) -> Statement | None:
    """notification_create_deferred's INSERT, not run (None when there are no rows), for a caller that runs it with
    its own writes in one statement (inventory.dbutils.run_together). Once run, the new rows are enqueued after
    commit as notification_create_deferred enqueues them."""
    _check_deferrable(kind)
    if not rows:
        return None
    now = timezone.now()
    sql = (
        f"{_DEFERRED_INSERT} SELECT %s, %s, c, e, o, l, k, '', '', '', 0, '', %s, d::jsonb, false, %s "
        "FROM unnest(%s::bigint[], %s::text[], %s::bigint[], %s::bigint[], %s::text[], %s::text[]) "
        "AS r(c, e, o, l, k, d) "
        "ON CONFLICT (dedupe_key) DO NOTHING"
    )
    params: list[object] = [kind, Notification.Status.PENDING, now, now]
    params += [[getattr(r, f) for r in rows] for f in ("customer_id", "to_email", "order_id", "line_id")]
    params.append([r.dedupe_key for r in rows])
    params.append([json.dumps(dict(r.data or {}), cls=DjangoJSONEncoder) for r in rows])
    return Statement(sql, params, lambda: _create_deferred_orm(kind, rows, now), returning="id", then=_enqueue_new)


def _check_deferrable(kind: str) -> None:
    if kind not in _CONTEXT_BUILDERS:
        raise ValueError(f"No context builder registered for {kind!r}: register_context_builder() it first.")


def _enqueue_new(new_ids: list[int]) -> None:
    if new_ids:
        transaction.on_commit(lambda: enqueue_send_many(new_ids))


def _create_deferred_orm(kind: str, rows: Sequence[DeferredRow], now: datetime) -> int:
    keys = [r.dedupe_key for r in rows]
    existing = set(Notification.objects.filter(dedupe_key__in=keys).values_list("dedupe_key", flat=True))
    fresh = {r.dedupe_key: r for r in rows if r.dedupe_key not in existing}
    Notification.objects.bulk_create(
        [
            Notification(
                kind=kind,
                customer_id=r.customer_id,
                to_email=r.to_email,
                order_id=r.order_id,
                line_id=r.line_id,
                dedupe_key=r.dedupe_key,
                scheduled_for=now,
                data=dict(r.data or {}),
                rendered=False,
            )
            for r in fresh.values()
        ],
        ignore_conflicts=True,
    )
    new_ids = list(Notification.objects.filter(dedupe_key__in=list(fresh)).values_list("pk", flat=True))
    _enqueue_new(new_ids)
    return len(new_ids)


def notification_create_deferred_from(*, kind: str, rows_sql: str, params: Mapping[str, object]) -> int:
    """`notification_create_deferred` with its rows selected in the database (PostgreSQL): `rows_sql` is a
    SELECT of (customer_id, to_email, order_id, line_id, dedupe_key, data as jsonb) with %(name)s parameters,
    so the rows never travel through Python. One INSERT … SELECT, existing dedupe keys skipped, one send task
    per SEND_CHUNK new rows after commit. Call inside the transaction of the change. Returns how many were new."""
    _check_deferrable(kind)
    if connection.vendor != "postgresql":
        raise NotImplementedError("PostgreSQL only: elsewhere use notification_create_deferred.")
    now = timezone.now()
    sql = (
        f"{_DEFERRED_INSERT} SELECT %(outbox_kind)s, %(outbox_status)s, r.c, r.e, r.o, r.l, r.k, '', '', '', 0, '', "
        f"%(outbox_now)s, r.d, false, %(outbox_now)s FROM ({rows_sql}) AS r(c, e, o, l, k, d) "
        "ON CONFLICT (dedupe_key) DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql, {**params, "outbox_kind": kind, "outbox_status": Notification.Status.PENDING, "outbox_now": now}
        )
        new_ids = [row[0] for row in cursor.fetchall()]
    _enqueue_new(new_ids)
    return len(new_ids)


def notifications_render(*, ids: Iterable[int]) -> int:
    """Render the unrendered notifications among `ids` in bulk (a few queries per kind); returns how many.

    Rows already rendered are left alone, so rendering twice (two workers) writes the same content."""
    pending = list(
        Notification.objects.filter(pk__in=list(ids), rendered=False).select_related(
            "customer", "order", "line__product"
        )
    )
    by_kind: dict[str, list[Notification]] = {}
    for notification in pending:
        by_kind.setdefault(notification.kind, []).append(notification)
    for kind, rows in by_kind.items():
        contexts = _CONTEXT_BUILDERS[kind](rows)
        for n in rows:
            n.subject, n.body_text, n.body_html = render(
                kind, {"customer": n.customer, "order": n.order, "line": n.line, **contexts[n.pk]}
            )
            n.rendered = True
    Notification.objects.bulk_update(pending, ["subject", "body_text", "body_html", "rendered"], batch_size=500)
    return len(pending)


def notification_rerender(
    *,
    notification: Notification,
    context: Mapping[str, object],
    scheduled_for: datetime,
    data: Mapping[str, object] | None = None,
) -> None:
    """Replace the content of a pending (or suppressed) notification and make it pending again, e.g. an ETA
    that moved again within the quiet period."""
    subject, text, html = render(
        notification.kind,
        {"customer": notification.customer, "order": notification.order, "line": notification.line, **context},
    )
    Notification.objects.filter(
        pk=notification.pk, status__in=[Notification.Status.PENDING, Notification.Status.SUPPRESSED]
    ).update(
        subject=subject,
        body_text=text,
        body_html=html,
        scheduled_for=scheduled_for,
        status=Notification.Status.PENDING,
        last_error="",
        data=dict(data or notification.data),
    )


def notification_suppress(*, notification: Notification, reason: str) -> bool:
    """Mark a pending notification as not to be sent (e.g. a corrected typo); True if it was pending."""
    return bool(
        Notification.objects.filter(pk=notification.pk, status=Notification.Status.PENDING).update(
            status=Notification.Status.SUPPRESSED, last_error=reason
        )
    )


def enqueue_send(notification_id: int) -> bool:
    """Hand the send to Celery. If the broker is down, log and return False: the row stays pending and
    `dispatch_notifications` (every minute under beat) sends it later."""
    from .tasks import send_notification

    try:
        send_notification.delay(notification_id)
    except Exception as exc:  # kombu raises several types for an unreachable broker
        logger.warning("Broker unavailable, notification %s stays pending: %s", notification_id, exc)
        return False
    return True


def enqueue_send_many(ids: Sequence[int]) -> int:
    """Hand many sends to Celery, one task per SEND_CHUNK ids (each renders its chunk in bulk, then sends).
    Stops at the first chunk the broker refuses: the rest stays pending for the dispatcher. Returns the
    number of ids enqueued."""
    from .tasks import send_notifications

    enqueued = 0
    for start in range(0, len(ids), SEND_CHUNK):
        chunk = list(ids[start : start + SEND_CHUNK])
        try:
            send_notifications.delay(chunk)
        except Exception as exc:  # kombu raises several types for an unreachable broker
            logger.warning("Broker unavailable, %s notifications stay pending: %s", len(ids) - enqueued, exc)
            break
        enqueued += len(chunk)
    return enqueued


def notifications_send_many(*, ids: Sequence[int]) -> dict[str, int]:
    """Render (in bulk) and send these notifications one by one, each at most once. A delivery failure is
    recorded on its row (retried later by the dispatcher) and does not stop the others. Returns counts by
    outcome."""
    notifications_render(ids=ids)
    outcomes: dict[str, int] = {}
    for pk in ids:
        try:
            outcome = notification_send(notification_id=pk)
        except DeliveryFailed:
            outcome = "retry"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


class DeliveryFailed(Exception):
    """The SMTP server refused or could not be reached; the task retries with backoff."""


def notification_send(*, notification_id: int, now: datetime | None = None, ignore_schedule: bool = False) -> str:
    """Send one notification at most once. Returns the resulting status ('sent', or why it was skipped).

    The row stays locked while the message is handed to SMTP, so two workers never send it twice; a
    row already sent, suppressed, failed or not yet due is left alone (`ignore_schedule`: send a pending
    row even before its scheduled time — the admin's "Send now"). An SMTP error counts an attempt, keeps
    the error, postpones the row by `retry_delay(attempts)` and raises DeliveryFailed for the retry;
    after MAX_ATTEMPTS the row is `failed`.
    """
    now = now or timezone.now()
    with transaction.atomic():
        notification = Notification.objects.select_for_update(of=("self",)).filter(pk=notification_id).first()
        if notification is None:
            return "missing"
        if notification.status != Notification.Status.PENDING:
            return notification.status
        if notification.scheduled_for > now and not ignore_schedule:
            return "not_due"
        if not notification.rendered:
            notifications_render(ids=[notification.pk])
            notification.refresh_from_db(fields=["subject", "body_text", "body_html", "rendered"])
        message = EmailMultiAlternatives(
            subject=notification.subject,
            body=notification.body_text,
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[notification.to_email],
            reply_to=[settings.SHOP_SUPPORT_EMAIL],
            headers={"X-Notification-Id": str(notification.pk), "Auto-Submitted": "auto-generated"},
        )
        message.attach_alternative(notification.body_html, "text/html")
        try:
            message.send(fail_silently=False)
        except Exception as exc:
            attempts = notification.attempts + 1
            failed = attempts >= MAX_ATTEMPTS
            Notification.objects.filter(pk=notification.pk).update(
                attempts=attempts,
                last_error=f"{type(exc).__name__}: {exc}"[:2000],
                status=Notification.Status.FAILED if failed else Notification.Status.PENDING,
                scheduled_for=now + retry_delay(attempts),
            )
            if failed:
                return Notification.Status.FAILED
            error = exc
        else:
            Notification.objects.filter(pk=notification.pk).update(
                status=Notification.Status.SENT,
                sent_at=timezone.now(),
                attempts=notification.attempts + 1,
                last_error="",
            )
            return Notification.Status.SENT
    raise DeliveryFailed(str(error))


def notifications_dispatch(*, limit: int = 500, now: datetime | None = None) -> int:
    """Enqueue every pending, due notification (what a broker outage or a quiet period held back).

    Returns how many were enqueued. Safe to run twice: sending skips rows already sent. Stops at the
    first row the broker refuses (it is down: each further try would only wait for the same timeout);
    the next run picks up the rest.
    """
    now = now or timezone.now()
    ids = list(
        Notification.objects.filter(status=Notification.Status.PENDING, scheduled_for__lte=now)
        .order_by("scheduled_for", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    enqueued = 0
    for pk in ids:
        if not enqueue_send(pk):
            break
        enqueued += 1
    return enqueued


@transaction.atomic
def notification_resend(*, notification: Notification) -> bool:
    """Put a failed notification back in the queue (attempts reset) and enqueue it; True if it was failed."""
    updated = Notification.objects.filter(pk=notification.pk, status=Notification.Status.FAILED).update(
        status=Notification.Status.PENDING, attempts=0, scheduled_for=timezone.now()
    )
    if updated:
        transaction.on_commit(lambda: enqueue_send(notification.pk))
    return bool(updated)
