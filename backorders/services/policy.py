"""The backorder policy managers edit (admin and API: GET/PATCH policy/).

The fill strategy orders the queue and the handling days sit on top of every arrival date, so a change
to either moves the ETA of waiting lines: they are re-pegged in the same transaction as the change.
"""

from collections.abc import Mapping

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction

from inventory.exceptions import InvalidInput

from ..models import Backorder, BackorderPolicy
from .eta import etas_recompute

EDITABLE_FIELDS = (
    "fill_strategy",
    "handling_days",
    "eta_change_threshold_days",
    "eta_quiet_minutes",
    "cancellation_offer_days",
    "status_update_days",
    "rolling_backorder_days",
    "status_link_days",
    "coupon_code",
    "compliance_profile",
)

# Settings that move ETAs: the queue order (who is covered by which PO) and the days added to arrivals.
REPEG_FIELDS = frozenset({"fill_strategy", "handling_days"})

# Products per etas_recompute call: bounds the memory of one pass, whatever the number of products.
REPEG_CHUNK = 200


def _policy_lock() -> BackorderPolicy:
    BackorderPolicy.ensure()  # the row exists from here on (created with the settings' defaults)
    return BackorderPolicy.objects.select_for_update(of=("self",)).order_by("pk").get(pk=1)


def _repeg_all_waiting() -> int:
    """Re-peg every product with waiting lines, in chunks of ascending product id (the global lock order)."""
    product_ids = list(
        Backorder.objects.filter(status=Backorder.Status.WAITING)
        .order_by("product_id")
        .values_list("product_id", flat=True)
        .distinct()
    )
    changed = 0
    for start in range(0, len(product_ids), REPEG_CHUNK):
        changed += etas_recompute(product_ids=product_ids[start : start + REPEG_CHUNK])
    return changed


@transaction.atomic
def policy_update(*, changes: Mapping[str, object], acting_user: AbstractBaseUser | None) -> BackorderPolicy:
    """Change policy settings (only the names in EDITABLE_FIELDS) and record who did it.

    Validated against the model (choices, ranges); nothing is written when a value is invalid. When the
    fill strategy or the handling days change, every waiting line is re-pegged before the commit, so no
    reader ever sees the new policy with the old ETAs. The policy row is locked first: two managers'
    changes apply one after the other.
    """
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise InvalidInput(
            f"Not editable policy settings: {', '.join(unknown)}.",
            fields={name: ["Not an editable policy setting."] for name in unknown},
        )
    policy = _policy_lock()
    repeg = any(name in REPEG_FIELDS and getattr(policy, name) != value for name, value in changes.items())
    for name, value in changes.items():
        setattr(policy, name, value)
    try:
        policy.full_clean(exclude=["updated_by"])
    except ValidationError as exc:
        raise InvalidInput("The policy change is invalid; nothing was changed.", fields=exc.message_dict) from exc
    policy.updated_by = acting_user if acting_user is not None and acting_user.is_authenticated else None
    policy.save(update_fields=[*changes, "updated_by", "updated_at"])
    if repeg:
        _repeg_all_waiting()
    return policy
