"""Orders in the admin: customers, orders with their lines, allocations and shipments.

Orders come from the API and storefronts, so they are read-only here except for actions that call
services. This module holds what needs only the orders app ("Ship allocated"); backorders/admin.py
extends the order admin with the workflows that touch the backorder queue ("Allocate stock",
"Cancel") and the backorder columns of the lines, because that app sits above this one.
"""

from django.contrib import admin, messages
from django.contrib.admin.utils import flatten_fieldsets
from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from inventory.admin import (
    ActionsOnlyAdminMixin,
    ReadOnlyAdminMixin,
    ValueListFilter,
    admin_link,
    badge,
    count_noun,
    redirect_to_next,
)
from inventory.exceptions import DomainError

from .admin_paging import BigTableAdminMixin
from .exceptions import NothingToShip, ShipCompleteHeld
from .models import Allocation, Customer, OrderLine, SalesOrder, Shipment, ShipmentLine
from .services import order_ship, order_ship_blockers

STATUS_COLORS = {
    SalesOrder.Status.BACKORDERED: "#c05600",
    SalesOrder.Status.ALLOCATED: "#2f6fb3",
    SalesOrder.Status.PARTIALLY_SHIPPED: "#2a8a8a",
    SalesOrder.Status.SHIPPED: "#2e7d32",
    SalesOrder.Status.CANCELLED: "#777777",
}

# How many order numbers a message lists before it says "and N more".
MESSAGE_LIST_LIMIT = 10


def numbers_list(numbers: list[str]) -> str:
    shown = ", ".join(numbers[:MESSAGE_LIST_LIMIT])
    more = len(numbers) - MESSAGE_LIST_LIMIT
    return f"{shown} and {more} more" if more > 0 else shown


def related_total(model, field: str, *, to: str, aggregate=Sum) -> Coalesce:
    """The total of `field` over the `model` rows whose `to` foreign key points at the listed row, 0 if none.

    A correlated subquery, computed for the rows of the page only (one lookup through the foreign key's index
    each), where a JOIN + GROUP BY would aggregate the whole table before the changelist's LIMIT.
    """
    rows = model.objects.filter(**{to: OuterRef("pk")}).order_by().values(to)
    return Coalesce(Subquery(rows.annotate(total=aggregate(field)).values("total")), 0)


# Up to this many matches, a search hands PostgreSQL the ids it found (it then knows how many there are); above,
# it keeps the condition as a join or subquery, which the list's index order meets early for so common a term.
SEARCH_ID_LIMIT = 1000


def few_ids(queryset: QuerySet) -> list | None:
    """The ids of `queryset` (one query, which stops early) when there are at most SEARCH_ID_LIMIT, else None.

    A "contains", join or subquery condition gets a guess of its row count from the planner, which then sorts a
    million rows when the guess was a handful (or reads a million when it was many); a list of values gets the
    real count from the statistics.
    """
    ids = list(queryset.values_list("pk", flat=True)[: SEARCH_ID_LIMIT + 1])
    return None if len(ids) > SEARCH_ID_LIMIT else ids


def ids_or_subquery(queryset: QuerySet) -> list | QuerySet:
    """few_ids(queryset), or the subquery when there are more."""
    ids = few_ids(queryset)
    return queryset.values("pk") if ids is None else ids


def order_search_q(term: str, *, names: bool = True) -> Q:
    """Orders whose number or customer email starts with `term`, or (`names`, for a term without digits or "@")
    whose customer's name contains it.

    Each part is a condition on one table's index (the LIKE indexes of the unique number and email columns, the
    customer foreign key): search_fields would OR them across the customer join, which reads every order.
    Numbers are stored upper case and emails lower case (order placement), so the prefixes match either case.
    "Contains" has no index, so a term that looks like a number or an email does not read every customer's name.
    """
    term = term.strip()
    customers = Q(email__startswith=term.lower())
    if names and not any(char.isdigit() or char == "@" for char in term):
        customers |= Q(name__icontains=term)
    customer_ids = ids_or_subquery(Customer.objects.order_by().filter(customers))
    return Q(number__startswith=term.upper()) | Q(customer_id__in=customer_ids)


@admin.register(Customer)
class CustomerAdmin(BigTableAdminMixin, admin.ModelAdmin):
    list_display = ["email", "name", "tier", "order_count", "created_at"]
    list_filter = ["tier"]
    search_fields = ["email", "name"]
    readonly_fields = ["created_at", "orders_link"]
    fields = ["email", "name", "tier", "created_at", "orders_link"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Customer]:
        return (
            super()
            .get_queryset(request)
            .annotate(order_count=related_total(SalesOrder, "pk", to="customer", aggregate=Count))
        )

    def has_delete_permission(self, request, obj=None):
        # Orders point at customers (PROTECT), and an order's history must stay whole.
        return False

    @admin.display(description="orders", ordering="order_count")
    def order_count(self, customer: Customer) -> int:
        return customer.order_count

    @admin.display(description="orders")
    def orders_link(self, customer: Customer) -> str:
        if customer.pk is None:
            return "-"
        url = reverse("admin:orders_salesorder_changelist")
        return format_html(
            '<a href="{}?customer__id__exact={}">{}</a>', url, customer.pk, count_noun(customer.order_count, "order")
        )


class OrderLineInline(admin.TabularInline):
    """The order's lines; every quantity is read-only (they change through services)."""

    model = OrderLine
    fields = ["sku", "product_name", "quantity", "allocated", "backordered", "shipped", "cancelled"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "lines (ordered = allocated + backordered + shipped + cancelled)"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product").order_by("id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="SKU")
    def sku(self, line: OrderLine) -> str:
        return admin_link(line.product, line.product.sku)

    @admin.display(description="product")
    def product_name(self, line: OrderLine) -> str:
        return line.product.name


class ShipmentInline(admin.TabularInline):
    model = Shipment
    fields = ["shipment", "shipped_at", "created_by", "contents"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("created_by")
            .prefetch_related(
                Prefetch(
                    "lines",
                    queryset=ShipmentLine.objects.select_related("line__product", "stock_level__warehouse").order_by(
                        "id"
                    ),
                )
            )
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="shipment")
    def shipment(self, shipment: Shipment) -> str:
        return admin_link(shipment, f"#{shipment.pk}")

    @admin.display(description="contents")
    def contents(self, shipment: Shipment) -> str:
        return ", ".join(
            f"{line.quantity} × {line.line.product.sku} from {line.stock_level.warehouse.code}"
            for line in shipment.lines.all()
        )


class SalesOrderAdmin(BigTableAdminMixin, ActionsOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "number",
        "placed_at",
        "customer_email",
        "customer_tier",
        "status_badge",
        "ship_complete",
        "units_ordered",
        "units_allocated",
        "units_backordered",
        "units_shipped",
        "units_cancelled",
    ]
    list_filter = ["status", "ship_complete", "placed_at", "customer__tier"]
    search_fields = ["number", "customer__email", "customer__name"]  # searched by get_search_results
    search_help_text = "An order number or customer email, or how it starts; or part of the customer's name."
    list_select_related = ["customer"]
    actions = ["ship_allocated"]
    inlines = [OrderLineInline, ShipmentInline]
    fulfilment_fields = ["units_summary", "shipping", "allocations"]

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["number", "customer_link", "status_badge", "placed_at", "created_by"]}),
            ("Terms", {"fields": ["ship_complete", "ship_by", "credit_applied"]}),
            ("Fulfilment", {"fields": self.fulfilment_fields}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return flatten_fieldsets(self.get_fieldsets(request, obj))

    def get_queryset(self, request: HttpRequest) -> QuerySet[SalesOrder]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                units_ordered=related_total(OrderLine, "quantity", to="order"),
                units_allocated=related_total(OrderLine, "allocated", to="order"),
                units_backordered=related_total(OrderLine, "backordered", to="order"),
                units_shipped=related_total(OrderLine, "shipped", to="order"),
                units_cancelled=related_total(OrderLine, "cancelled", to="order"),
            )
        )

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(order_search_q(search_term)), False

    # Columns and read-only fields

    @admin.display(description="customer", ordering="customer__email")
    def customer_email(self, order: SalesOrder) -> str:
        return order.customer.email

    @admin.display(description="tier", ordering="customer__tier")
    def customer_tier(self, order: SalesOrder) -> str:
        return order.customer.get_tier_display()

    @admin.display(description="customer")
    def customer_link(self, order: SalesOrder) -> str:
        return admin_link(order.customer)

    @admin.display(description="status", ordering="status")
    def status_badge(self, order: SalesOrder) -> str:
        return badge(order.get_status_display(), STATUS_COLORS.get(order.status, "#777777"))

    @admin.display(description="ordered", ordering="units_ordered")
    def units_ordered(self, order: SalesOrder) -> int:
        return order.units_ordered or 0

    @admin.display(description="allocated", ordering="units_allocated")
    def units_allocated(self, order: SalesOrder) -> int:
        return order.units_allocated or 0

    @admin.display(description="backordered", ordering="units_backordered")
    def units_backordered(self, order: SalesOrder) -> int:
        return order.units_backordered or 0

    @admin.display(description="shipped", ordering="units_shipped")
    def units_shipped(self, order: SalesOrder) -> int:
        return order.units_shipped or 0

    @admin.display(description="cancelled", ordering="units_cancelled")
    def units_cancelled(self, order: SalesOrder) -> int:
        return order.units_cancelled or 0

    @admin.display(description="units")
    def units_summary(self, order: SalesOrder) -> str:
        return (
            f"{order.units_ordered or 0} ordered = {order.units_allocated or 0} allocated + "
            f"{order.units_backordered or 0} backordered + {order.units_shipped or 0} shipped + "
            f"{order.units_cancelled or 0} cancelled"
        )

    @admin.display(description="shipping")
    def shipping(self, order: SalesOrder) -> str:
        if order.pk is None:
            return "-"
        return order_ship_blockers(order=order) or f"Ready: {order.units_allocated or 0} allocated unit(s) can ship."

    @admin.display(description="allocated from")
    def allocations(self, order: SalesOrder) -> str:
        if order.pk is None:
            return "-"
        rows = (
            Allocation.objects.filter(line__order=order)
            .select_related("line__product", "stock_level__warehouse")
            .order_by("line_id", "stock_level__warehouse__priority")
        )
        items = format_html_join(
            "",
            "<li>{} × {} from {}</li>",
            ((a.quantity, a.line.product.sku, a.stock_level.warehouse.code) for a in rows),
        )
        return format_html("<ul style='margin:0;padding-left:1em'>{}</ul>", items) if items else "Nothing allocated."

    # Actions (each needs its role's permission: orders.ship_salesorder for the warehouse, orders.cancel_salesorder
    # for customer service; see backorders/roles.py)

    def has_ship_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.ship_salesorder")

    def has_cancel_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("orders.cancel_salesorder")

    # The shipping service; the backorders app swaps in its workflow that also emits order.shipped.
    ship_service = staticmethod(order_ship)

    @admin.action(description="Ship allocated", permissions=["ship"])
    def ship_allocated(self, request: HttpRequest, queryset: QuerySet[SalesOrder]):
        """Ship every allocated unit of each order; held and empty orders are reported, not errors."""
        shipped: list[str] = []
        units = 0
        held: list[str] = []
        nothing: list[str] = []
        for order in queryset.order_by("placed_at", "pk"):
            try:
                shipment = self.ship_service(order=order, acting_user=request.user)
            except ShipCompleteHeld:
                held.append(order.number)
            except NothingToShip:
                nothing.append(order.number)
            except DomainError as exc:
                self.message_user(request, f"{order.number}: {exc.detail}", messages.ERROR)
            else:
                shipped.append(order.number)
                units += shipment.lines.aggregate(units=Sum("quantity"))["units"] or 0
        if shipped:
            self.message_user(
                request,
                f"{count_noun(len(shipped), 'order')} shipped: {count_noun(units, 'unit')} in "
                f"{count_noun(len(shipped), 'shipment')}.",
                messages.SUCCESS,
            )
        if held:
            self.message_user(
                request,
                f"{count_noun(len(held), 'order')} held: {'it ships' if len(held) == 1 else 'they ship'} complete "
                f"and still {'waits' if len(held) == 1 else 'wait'} for stock ({numbers_list(held)}).",
                messages.WARNING,
            )
        if nothing:
            self.message_user(
                request,
                f"{count_noun(len(nothing), 'order')} had nothing allocated to ship ({numbers_list(nothing)}).",
                messages.WARNING,
            )
        return redirect_to_next(request)


admin.site.register(SalesOrder, SalesOrderAdmin)


class OrderNumberFilter(ValueListFilter):
    title = "order"
    parameter_name = "order"
    lookup = "line__order__number"


@admin.register(OrderLine)
class OrderLineAdmin(BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "order_number",
        "sku",
        "customer_email",
        "quantity",
        "allocated",
        "backordered",
        "shipped",
        "cancelled",
        "order_status",
    ]
    list_filter = ["order__status", "order__ship_complete"]
    search_fields = ["order__number", "product__sku", "product__name", "order__customer__email"]
    list_select_related = ["order__customer", "product"]
    fields = ["order", "product", "quantity", "allocated", "backordered", "shipped", "cancelled"]
    readonly_fields = fields

    @admin.display(description="order", ordering="order__number")
    def order_number(self, line: OrderLine) -> str:
        return admin_link(line.order, line.order.number)

    @admin.display(description="SKU", ordering="product__sku")
    def sku(self, line: OrderLine) -> str:
        return line.product.sku

    @admin.display(description="customer", ordering="order__customer__email")
    def customer_email(self, line: OrderLine) -> str:
        return line.order.customer.email

    @admin.display(description="order status", ordering="order__status")
    def order_status(self, line: OrderLine) -> str:
        return line.order.get_status_display()


@admin.register(Allocation)
class AllocationAdmin(BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["order_number", "sku", "warehouse", "quantity"]
    list_filter = [OrderNumberFilter, "stock_level__warehouse"]
    search_fields = ["line__order__number", "line__product__sku", "line__order__customer__email"]
    list_select_related = ["line__order", "line__product", "stock_level__warehouse"]
    fields = ["line", "stock_level", "quantity"]
    readonly_fields = fields

    @admin.display(description="order", ordering="line__order__number")
    def order_number(self, allocation: Allocation) -> str:
        return admin_link(allocation.line.order, allocation.line.order.number)

    @admin.display(description="SKU", ordering="line__product__sku")
    def sku(self, allocation: Allocation) -> str:
        return allocation.line.product.sku

    @admin.display(description="warehouse", ordering="stock_level__warehouse__code")
    def warehouse(self, allocation: Allocation) -> str:
        return allocation.stock_level.warehouse.code


class ShipmentLineInline(admin.TabularInline):
    model = ShipmentLine
    fields = ["sku", "warehouse", "quantity"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("line__product", "stock_level__warehouse")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="SKU")
    def sku(self, line: ShipmentLine) -> str:
        return line.line.product.sku

    @admin.display(description="warehouse")
    def warehouse(self, line: ShipmentLine) -> str:
        return line.stock_level.warehouse.code


@admin.register(Shipment)
class ShipmentAdmin(BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["__str__", "order_number", "customer_email", "shipped_at", "units", "created_by"]
    list_filter = ["shipped_at"]
    search_fields = ["order__number", "order__customer__email"]
    list_select_related = ["order__customer", "created_by"]
    fields = ["order", "shipped_at", "created_by"]
    readonly_fields = fields
    inlines = [ShipmentLineInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Shipment]:
        return super().get_queryset(request).annotate(units=related_total(ShipmentLine, "quantity", to="shipment"))

    @admin.display(description="order", ordering="order__number")
    def order_number(self, shipment: Shipment) -> str:
        return admin_link(shipment.order, shipment.order.number)

    @admin.display(description="customer", ordering="order__customer__email")
    def customer_email(self, shipment: Shipment) -> str:
        return shipment.order.customer.email

    @admin.display(description="units", ordering="units")
    def units(self, shipment: Shipment) -> int:
        return shipment.units or 0


@admin.register(ShipmentLine)
class ShipmentLineAdmin(BigTableAdminMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["shipment", "order_number", "sku", "warehouse", "quantity"]
    search_fields = ["shipment__order__number", "line__product__sku"]
    list_filter = ["stock_level__warehouse"]
    list_select_related = ["shipment__order", "line__order", "line__product", "stock_level__warehouse"]
    fields = ["shipment", "line", "stock_level", "quantity"]
    readonly_fields = fields

    @admin.display(description="order", ordering="shipment__order__number")
    def order_number(self, line: ShipmentLine) -> str:
        return admin_link(line.shipment.order, line.shipment.order.number)

    @admin.display(description="SKU", ordering="line__product__sku")
    def sku(self, line: ShipmentLine) -> str:
        return line.line.product.sku

    @admin.display(description="warehouse", ordering="stock_level__warehouse__code")
    def warehouse(self, line: ShipmentLine) -> str:
        return line.stock_level.warehouse.code
