"""The compliance clock's rules per policy profile (COMPLIANCE.md), as small strategy classes.

A profile decides, for one open clock on one business date, what is due: nothing, a delay notice, a
renewed notice, a deemed cancellation, or the end of an additional period. It reads; the scan in
backorders.services.compliance writes what it decides.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache

import holidays
from django.db.models import F, Q

from orders.models import SalesOrder

from .models import BackorderPolicy, ComplianceClock

Consent = ComplianceClock.Consent


@lru_cache(maxsize=64)
def _holidays(country: str, year: int) -> frozenset[date]:
    try:
        return frozenset(holidays.country_holidays(country, years=year))
    except NotImplementedError:
        return frozenset()


def add_working_days(start: date, days: int, *, country: str) -> date:
    """The date `days` working days after `start` (weekends and the country's public holidays skipped)."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in _holidays(country, current.year):
            remaining -= 1
    return current


@dataclass(frozen=True)
class Decision:
    """What the scan must do for one clock today."""

    action: str  # "none" | "notice" | "renewed_notice" | "cancel" | "period_expired"
    revised_date: date | None = None  # R stated in the notice (None = unknown)
    needs_consent: bool = False
    consent_deadline: date | None = None
    reason: str = ""
    extra: dict = field(default_factory=dict)


NOTHING = Decision("none")


class ComplianceProfile:
    code = ""

    def __init__(self, policy: BackorderPolicy) -> None:
        self.policy = policy

    def ship_by(self, order: SalesOrder) -> date:
        raise NotImplementedError

    def decide(self, clock: ComplianceClock, *, eta: date | None, today: date) -> Decision:
        raise NotImplementedError

    def clock_start_sql(self, *, order: str, product: str) -> tuple[str, str]:
        """(ship_by, exempt): `ship_by(order)` and whether the line is exempt, as PostgreSQL expressions over
        the columns of the order and the product (table aliases `order` and `product`), for starting a batch
        of clocks in one statement. The same rules as ship_by and the scan's exemption, written once more in
        SQL (the tests compare the two)."""
        raise NotImplementedError

    def due_filter(self, today: date) -> Q:
        """A filter on ComplianceClock (the line's ETA as `line__backorder__eta`) that matches at least every
        clock for which `decide` returns something other than nothing today: the scan runs `decide` only on
        those, so a day on which nothing is due costs one pass in the database. It may match more (the
        exact answer is `decide`'s), never fewer."""
        raise NotImplementedError

    def refund_due(self, order: SalesOrder, cancelled_on: date) -> date:
        raise NotImplementedError


class UsFtcProfile(ComplianceProfile):
    """16 CFR 435: ship by T; a delay option notice no later than T; silence is consent only on a first
    notice with R <= T + 30; renewed notices always need express consent; refund in 7 working days."""

    code = "us_ftc"

    def ship_by(self, order: SalesOrder) -> date:
        if order.ship_by:
            return order.ship_by
        days = self.policy.credit_ship_days if order.credit_applied else self.policy.default_ship_days
        return order.placed_at.date() + timedelta(days=days)

    def refund_due(self, order: SalesOrder, cancelled_on: date) -> date:
        if order.credit_applied:
            return cancelled_on + timedelta(days=self.policy.credit_refund_days)
        return add_working_days(cancelled_on, self.policy.refund_working_days, country=self.policy.holiday_country)

    def clock_start_sql(self, *, order: str, product: str) -> tuple[str, str]:
        days = (
            f"CASE WHEN {order}.credit_applied THEN {int(self.policy.credit_ship_days)} "
            f"ELSE {int(self.policy.default_ship_days)} END"
        )
        ship_by = f"coalesce({order}.ship_by, ({order}.placed_at AT TIME ZONE 'UTC')::date + {days})"
        return ship_by, f"({order}.cash_on_delivery OR {product}.ftc_exempt)"

    def decide(self, clock: ComplianceClock, *, eta: date | None, today: date) -> Decision:
        T = clock.ship_by
        lead = timedelta(days=self.policy.notice_lead_days)
        window = timedelta(days=self.policy.consent_window_days)

        # A deadline for express consent has passed without it: cancel.
        if clock.consent_deadline and today > clock.consent_deadline and clock.consent != Consent.EXPRESS:
            return Decision("cancel", reason=f"no express consent by {clock.consent_deadline:%Y-%m-%d}")

        if clock.notices_sent == 0:
            if today > T:
                return Decision("cancel", reason=f"no delay notice was sent by the ship-by date {T:%Y-%m-%d}")
            if eta is not None and eta <= T and today < T - lead:
                return NOTHING
            # First notice. Uncertain cases (no R, R not after T) need express consent.
            needs_consent = eta is None or eta <= T or eta > T + window
            return Decision(
                "notice",
                revised_date=eta,
                needs_consent=needs_consent,
                consent_deadline=T + window if needs_consent else None,
                reason="ETA after the ship-by date"
                if eta and eta > T
                else "cannot confirm shipment by the ship-by date",
            )

        # After a notice: a customer who expressly agreed to an indefinite delay gets no more option notices.
        if clock.indefinite_consent:
            return NOTHING
        R = clock.revised_date
        if R is None:
            return NOTHING  # waiting for express consent (deadline handled above)
        if clock.consent_deadline and clock.consent != Consent.EXPRESS:
            return NOTHING  # a renewed notice is out; its deadline is handled above
        will_miss = eta is None or eta > R or today >= R - lead
        if not will_miss:
            return NOTHING
        if today < R:
            return Decision(
                "renewed_notice",
                revised_date=eta if eta is None or eta > R else None,
                needs_consent=True,
                consent_deadline=R,
                reason="the revised date will be missed",
            )
        if today > R:
            return Decision("cancel", reason=f"the revised date {R:%Y-%m-%d} passed without a renewed notice")
        return NOTHING  # on R itself it may still ship today

    def due_filter(self, today: date) -> Q:
        # decide's branches, each widened only where the exact test needs Python.
        lead = today + timedelta(days=self.policy.notice_lead_days)
        deadline_passed = Q(consent_deadline__lt=today) & ~Q(consent=Consent.EXPRESS)
        first_notice_or_cancel = Q(notices_sent=0) & (
            Q(ship_by__lt=today)
            | Q(ship_by__lte=lead)
            | Q(line__backorder__eta__isnull=True)
            | Q(line__backorder__eta__gt=F("ship_by"))
        )
        renewed_or_cancel = (
            Q(notices_sent__gt=0, indefinite_consent=False, revised_date__isnull=False)
            & (Q(consent_deadline__isnull=True) | Q(consent=Consent.EXPRESS))
            & (
                Q(line__backorder__eta__isnull=True)
                | Q(line__backorder__eta__gt=F("revised_date"))
                | Q(revised_date__lte=lead)
            )
            & (Q(revised_date__lt=today) | Q(revised_date__gt=today))
        )
        return deadline_passed | first_notice_or_cancel | renewed_or_cancel


class EuCrdProfile(ComplianceProfile):
    """CRD art. 18 / CRA s.28: deliver within 30 days unless agreed; if missed, propose an additional period
    (no silence-as-consent); when it passes, the customer may terminate; refund without undue delay."""

    code = "eu_crd"

    def ship_by(self, order: SalesOrder) -> date:
        return order.ship_by or order.placed_at.date() + timedelta(days=self.policy.eu_delivery_days)

    def refund_due(self, order: SalesOrder, cancelled_on: date) -> date:
        return cancelled_on + timedelta(days=self.policy.eu_refund_days)

    def clock_start_sql(self, *, order: str, product: str) -> tuple[str, str]:
        days = int(self.policy.eu_delivery_days)
        return f"coalesce({order}.ship_by, ({order}.placed_at AT TIME ZONE 'UTC')::date + {days})", "false"

    def decide(self, clock: ComplianceClock, *, eta: date | None, today: date) -> Decision:
        deadline = clock.ship_by
        transit = timedelta(days=self.policy.eu_transit_days)
        lead = timedelta(days=self.policy.notice_lead_days)
        delivery = eta + transit if eta else None
        if clock.notices_sent == 0:
            if delivery is not None and delivery <= deadline and today < deadline - lead:
                return NOTHING
            period_end = max(deadline, today) + timedelta(days=self.policy.eu_additional_period_days)
            return Decision(
                "notice",
                revised_date=period_end,
                needs_consent=False,
                reason="delivery will miss the agreed date",
                extra={"expected_delivery": delivery.isoformat() if delivery else None},
            )
        if clock.revised_date and today > clock.revised_date and clock.consent != Consent.DECLINED:
            return Decision("period_expired", reason="the additional period passed without delivery")
        return NOTHING

    def due_filter(self, today: date) -> Q:
        lead = today + timedelta(days=self.policy.notice_lead_days)
        transit = timedelta(days=self.policy.eu_transit_days)
        first_notice = Q(notices_sent=0) & (
            Q(ship_by__lte=lead)
            | Q(line__backorder__eta__isnull=True)
            | Q(line__backorder__eta__gt=F("ship_by") - transit)  # delivery = ETA + transit after the deadline
        )
        period_expired = Q(notices_sent__gt=0, revised_date__lt=today) & ~Q(consent=Consent.DECLINED)
        return first_notice | period_expired


PROFILES: dict[str, type[ComplianceProfile]] = {p.code: p for p in (UsFtcProfile, EuCrdProfile)}


def compliance_profile(policy: BackorderPolicy, code: str | None = None) -> ComplianceProfile:
    return PROFILES[code or policy.compliance_profile](policy)


def clocks_due_filter(policy: BackorderPolicy, today: date) -> Q:
    """Every profile's due_filter, each on the clocks that follow it (a clock keeps the profile it started with).
    A clock of a profile no longer known is matched too, so `decide` fails on it loudly as before."""
    due = ~Q(profile__in=list(PROFILES))
    for code, profile in PROFILES.items():
        due |= Q(profile=code) & profile(policy).due_filter(today)
    return due
