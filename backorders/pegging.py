"""ETA pegging, the pure part: open supply per product and the walk of a queue against it.

Walk the queue in fill order and the open purchase-order lines by arrival date. A line's ETA is the
arrival date of the PO line whose cumulative open quantity first covers the line's cumulative queue
position (the units of every line ahead of it plus its own), plus the policy's handling days
(source `purchase_order`). Lines no open PO covers get today + lead time + handling days, never
earlier than a line ahead of them (source `lead_time`). A discontinued product has no ETA.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import F, QuerySet
from django.db.models.functions import Coalesce

from inventory.models import PurchaseOrder, PurchaseOrderLine

from .models import Backorder

Source = Backorder.EtaSource


@dataclass(frozen=True)
class Supply:
    """Open quantity of one PO line, arriving on `arrival`."""

    arrival: date
    quantity: int
    label: str


@dataclass(frozen=True)
class Peg:
    eta: date | None
    source: str
    label: str


def open_supply_rows(**filters: object) -> QuerySet:
    """Open PO lines (filtered by `filters`, e.g. product_id__in) as rows for supply_from_rows, in arrival order."""
    return (
        PurchaseOrderLine.objects.filter(
            purchase_order__status__in=PurchaseOrder.OPEN_STATUSES, received__lt=F("quantity"), **filters
        )
        .annotate(arrival=Coalesce("expected_date", "purchase_order__expected_date"))
        .order_by("product_id", "arrival", "id")
        .values_list("product_id", "arrival", "quantity", "received", "purchase_order__number")
    )


def supply_from_rows(rows: Iterable[tuple[int, date, int, int, str]], *, as_of: date) -> dict[int, list[Supply]]:
    """Per product, its open PO lines in arrival order (an overdue line counts as arriving today), from rows in
    open_supply_rows's shape and order."""
    supply: dict[int, list[Supply]] = defaultdict(list)
    for product_id, arrival, quantity, received, number in rows:
        supply[product_id].append(Supply(max(arrival, as_of), quantity - received, number))
    for lines in supply.values():
        lines.sort(key=lambda s: s.arrival)  # overdue lines moved to today keep date order
    return supply


def open_supply(*, product_ids: Iterable[int], as_of: date) -> dict[int, list[Supply]]:
    """Open PO lines per product in arrival order (an overdue PO counts as arriving today). One query."""
    return supply_from_rows(open_supply_rows(product_id__in=set(product_ids)), as_of=as_of)


def peg(
    quantities: Sequence[int], supply: Sequence[Supply], *, lead_eta: date | None, handling_days: int, restockable: bool
) -> list[Peg]:
    """The ETA of each queue position (quantities in fill order). Pure: no database."""
    if not restockable:
        return [Peg(None, "", "") for _ in quantities]
    pegs = []
    covered = 0  # cumulative open PO quantity up to and including supply[index]
    index = 0
    position = 0
    floor: date | None = None
    handling = timedelta(days=handling_days)
    for quantity in quantities:
        position += quantity
        while index < len(supply) and covered + supply[index].quantity < position:
            covered += supply[index].quantity
            index += 1
        if index < len(supply):
            eta = supply[index].arrival + handling
            pegs.append(Peg(eta, Source.PURCHASE_ORDER, supply[index].label))
        elif lead_eta is None:
            pegs.append(Peg(floor, Source.LEAD_TIME if floor else "", "after the last purchase order"))
        else:
            eta = max(lead_eta, floor) if floor else lead_eta
            pegs.append(Peg(eta, Source.LEAD_TIME, "lead time"))
        if pegs[-1].eta and (floor is None or pegs[-1].eta > floor):
            floor = pegs[-1].eta
    return pegs
