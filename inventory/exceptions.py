"""Domain errors. Every service raises a subclass of DomainError; the API turns it into JSON
{code, detail, fields?} with `http_status`, the admin into an error message."""

from dataclasses import dataclass


class DomainError(Exception):
    code = "invalid"
    http_status = 400

    def __init__(self, detail: str, *, fields: dict[str, list[str]] | None = None, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fields = fields or {}
        self.extra = extra

    def as_dict(self) -> dict[str, object]:
        body: dict[str, object] = {"code": self.code, "detail": self.detail, **self.extra}
        if self.fields:
            body["fields"] = self.fields
        return body


class InvalidInput(DomainError):
    code = "invalid"
    http_status = 400


class NotFound(DomainError):
    code = "not_found"
    http_status = 404


class Conflict(DomainError):
    code = "conflict"
    http_status = 409


@dataclass(frozen=True)
class Shortage:
    sku: str
    requested: int
    available: int


class InsufficientStock(Conflict):
    """One or more SKUs cannot be ordered: not enough available and backorders are not possible."""

    code = "insufficient_stock"

    def __init__(self, shortages: list[Shortage]) -> None:
        self.shortages = shortages
        first = shortages[0]
        names = ", ".join(f"{s.sku} (requested {s.requested}, available {s.available})" for s in shortages)
        super().__init__(
            f"Not enough stock and backorders are not possible for: {names}. Reduce the quantity or remove the item.",
            sku=first.sku,
            available=first.available,
            shortages=[{"sku": s.sku, "requested": s.requested, "available": s.available} for s in shortages],
        )


class NegativeStock(Conflict):
    code = "negative_stock"


class StockAllocated(Conflict):
    code = "stock_allocated"

    def __init__(self, *, sku: str, warehouse: str, on_hand: int, allocated: int, delta: int) -> None:
        super().__init__(
            f"Cannot change {sku} at {warehouse} by {delta:+d}: {on_hand} on hand of which {allocated} are "
            f"allocated to orders, so on hand cannot go below {allocated}. Cancel or ship those orders first.",
            sku=sku,
            warehouse=warehouse,
            on_hand=on_hand,
            allocated=allocated,
        )
