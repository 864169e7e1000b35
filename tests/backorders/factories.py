"""Orders are made through the real placement service, so every test order obeys the invariants."""

from backorders.services import CustomerRequest, LineRequest, order_place
from orders.models import Customer, SalesOrder

from ..orders.factories import CustomerFactory


def place(
    *lines: tuple[str, int], customer: Customer | None = None, ship_complete: bool = False, **kwargs
) -> SalesOrder:
    """place(("SKU-1", 3), ("SKU-2", 1), customer=...) -> SalesOrder through order_place."""
    customer = customer or CustomerFactory()
    return order_place(
        customer=CustomerRequest(email=customer.email, name=customer.name),
        lines=[LineRequest(sku=sku, quantity=qty) for sku, qty in lines],
        ship_complete=ship_complete,
        **kwargs,
    )
