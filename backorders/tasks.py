from celery import shared_task


@shared_task(name="backorders.scan", ignore_result=True, soft_time_limit=3300, time_limit=3600)
def scan_backorders() -> str:
    """Daily: decide every due notice and deadline (idempotent; safe to run twice)."""
    from .services.compliance import backorders_scan

    return str(backorders_scan())


@shared_task(name="backorders.recompute_etas", ignore_result=True, soft_time_limit=3300, time_limit=3600)
def recompute_etas() -> None:
    """Nightly: re-peg every waiting line (lead-time ETAs move with the calendar)."""
    from django.core.management import call_command

    call_command("recompute_etas", verbosity=0)


@shared_task(name="backorders.purge_idempotency_keys", ignore_result=True, soft_time_limit=600, time_limit=660)
def purge_idempotency_keys() -> int:
    """Nightly: forget Idempotency-Keys past their time to live (IDEMPOTENCY_KEY_TTL_HOURS)."""
    from .idempotency import idempotency_keys_purge

    return idempotency_keys_purge()
