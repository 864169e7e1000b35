from celery import shared_task

from .services import (
    RETRY_BACKOFF_MAX_SECONDS,
    RETRY_BACKOFF_SECONDS,
    DeliveryFailed,
    notification_send,
    notifications_dispatch,
    notifications_send_many,
)


@shared_task(
    name="notifications.send",
    autoretry_for=(DeliveryFailed,),
    # The schedule notification_send writes into the row, without jitter, so a retry arrives when the row is
    # due again. A retry that finds the row sent (the dispatcher got there first) or not yet due just ends.
    retry_backoff=RETRY_BACKOFF_SECONDS,
    retry_backoff_max=RETRY_BACKOFF_MAX_SECONDS,
    retry_jitter=False,
    max_retries=10,
    soft_time_limit=60,
    time_limit=90,
    acks_late=True,
    ignore_result=True,
)
def send_notification(notification_id: int) -> str:
    """Deliver one outbox row (idempotent: the row is locked and skipped once sent)."""
    return notification_send(notification_id=notification_id)


@shared_task(name="notifications.send_many", acks_late=True, ignore_result=True, soft_time_limit=600, time_limit=660)
def send_notifications(notification_ids: list[int]) -> dict[str, int]:
    """Render a chunk of outbox rows in bulk and deliver each (idempotent like send_notification; rows that fail
    are retried by the dispatcher on their own schedule)."""
    return notifications_send_many(ids=notification_ids)


@shared_task(name="notifications.dispatch", ignore_result=True, soft_time_limit=120, time_limit=180)
def dispatch_notifications() -> int:
    """Enqueue what is pending and due (the safety net behind on-commit enqueueing)."""
    return notifications_dispatch()
