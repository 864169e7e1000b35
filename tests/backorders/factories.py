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


def waiting_queue(product, count: int, quantity: int = 1) -> list[SalesOrder]:
    """`count` single-line orders all waiting for `product`, bulk-inserted (for scale tests).

    Consistent with the invariants: nothing allocated, the whole line backordered, one waiting backorder each.
    """
    from datetime import timedelta

    from django.utils import timezone

    from backorders.models import Backorder
    from orders.models import OrderLine

    customer = CustomerFactory()
    start = timezone.now() - timedelta(days=1)
    orders = SalesOrder.objects.bulk_create(
        SalesOrder(
            number=f"BULK-{product.sku}-{i:06d}",
            customer=customer,
            status=SalesOrder.Status.BACKORDERED,
            placed_at=start + timedelta(seconds=i),
        )
        for i in range(count)
    )
    lines = OrderLine.objects.bulk_create(
        OrderLine(order=o, product=product, quantity=quantity, backordered=quantity) for o in orders
    )
    Backorder.objects.bulk_create(
        Backorder(line=line, product=product, quantity=quantity, original_quantity=quantity, placed_at=order.placed_at)
        for line, order in zip(lines, orders, strict=True)
    )
    return orders
