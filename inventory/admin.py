"""Inventory in the admin: warehouses, products, stock per warehouse and the stock ledger.

Stock quantities are read-only everywhere: they change only through services. The parts that need
the backorder workflows (availability badge, next ETA, the "Adjust stock" form that refills the queue)
are added in backorders/admin.py, which sits above this app (STYLE.md: inventory imports no other app).
"""

from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import F, QuerySet, Sum
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme

from .models import Product, PurchaseOrder, PurchaseOrderLine, StockLevel, StockMovement, Supplier, Warehouse
from .selectors import products_with_stock


class ValueListFilter(admin.SimpleListFilter):
    """Filter on one exact value from the URL (`?sku=MUG`), for links from other pages.

    Shown in the sidebar only while active, so a long list of values (every SKU, every order) is never
    rendered or queried.
    """

    lookup = ""

    def lookups(self, request, model_admin):
        value = self.value()
        return [(value, value)] if value else []

    def queryset(self, request, queryset):
        value = self.value()
        return queryset.filter(**{self.lookup: value}) if value else queryset


def admin_link(obj, text: str | None = None) -> str:
    """A link to the admin change page of `obj`, or "-" when there is none."""
    if obj is None:
        return "-"
    opts = obj._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
    return format_html('<a href="{}">{}</a>', url, text if text is not None else str(obj))


def count_noun(count: int, singular: str, plural: str | None = None) -> str:
    """'1 order', '3 orders', '0 orders'."""
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def badge(text: str, color: str) -> str:
    return format_html(
        '<span style="display:inline-block;padding:1px 8px;border-radius:9px;background:{};color:#fff;'
        'font-size:11px;font-weight:600;white-space:nowrap">{}</span>',
        color,
        text,
    )


def redirect_to_next(request: HttpRequest) -> HttpResponseRedirect | None:
    """Redirect to the `next` URL posted with a form (a button on a change page), if it is safe."""
    target = request.POST.get("next") or request.GET.get("next")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return None


class ReadOnlyAdminMixin:
    """View-only in the admin: rows are written by services, never by a form."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ActionsOnlyAdminMixin:
    """Rows change only through admin actions that call services: the change page is view-only.

    The change permission still applies to the changelist (obj=None), where the actions need it; on
    one object it is refused, so no form can save a stale copy over what a service wrote meanwhile.
    """

    change_form_template = "admin/change_form_object_actions.html"
    # Appended to the changelist URL the object's action buttons post to (e.g. a filter that shows the object).
    object_actions_query = ""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        if obj is not None:
            return False
        return super().has_change_permission(request)

    def has_delete_permission(self, request, obj=None):
        return False

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if object_id is not None:
            # Buttons on the object's page that run the changelist actions on this one object.
            opts = self.model._meta
            extra_context["object_actions"] = [
                (name, description) for name, (_func, _name, description) in self.get_actions(request).items()
            ]
            extra_context["object_actions_url"] = (
                reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist") + self.object_actions_query
            )
        return super().changeform_view(request, object_id, form_url, extra_context)


def intermediate_context(model_admin: admin.ModelAdmin, request: HttpRequest, **context) -> dict:
    """Context for an action's intermediate page (admin/action_intermediate.html)."""
    return {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.model._meta,
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
        "next": request.POST.get("next", ""),
        "media": model_admin.media,
        **context,
    }


@admin.register(Warehouse)
class WarehouseAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "priority", "active"]
    list_display_links = ["code", "name"]
    list_editable = ["priority", "active"]
    list_filter = ["active"]
    search_fields = ["code", "name"]
    ordering = ["priority", "code"]

    def has_delete_permission(self, request, obj=None):
        # Stock, ledger and allocations point at warehouses (PROTECT); deactivate one instead.
        return False


class StockLevelInline(admin.TabularInline):
    model = StockLevel
    fields = ["warehouse", "warehouse_priority", "on_hand", "allocated", "available_units"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name = "stock in a warehouse"
    verbose_name_plural = "stock per warehouse"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("product", "warehouse")
            .order_by("warehouse__priority", "warehouse_id")
        )

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="warehouse priority")
    def warehouse_priority(self, level: StockLevel) -> str:
        warehouse = level.warehouse
        return f"{warehouse.priority}" + ("" if warehouse.active else " (inactive: not allocated from)")

    @admin.display(description="available")
    def available_units(self, level: StockLevel) -> int:
        return level.available


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = [
        "sku",
        "name",
        "on_hand",
        "allocated",
        "available",
        "backorders_allowed",
        "discontinued",
        "lead_time",
        "reorder_point",
    ]
    list_display_links = ["sku", "name"]
    list_filter = ["discontinued", "backorders_allowed", "supplier"]
    search_fields = ["sku", "name"]
    list_select_related = ["supplier"]
    stock_fields = ["on_hand", "allocated", "available", "stock_ledger"]
    inlines = [StockLevelInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        return products_with_stock(super().get_queryset(request))

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["sku", "name"]}),
            ("Ordering", {"fields": ["backorders_allowed", "discontinued"]}),
            ("Replenishment", {"fields": ["supplier", "lead_time_days", "safety_stock", "reorder_point"]}),
            (
                "Stock in active warehouses (changes only through a stock adjustment, a receipt or a shipment)",
                {"fields": self.stock_fields},
            ),
            ("History", {"fields": ["created_at", "updated_at"], "classes": ["collapse"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = [*self.stock_fields, "created_at", "updated_at"]
        # The SKU is the key the API, storefronts and the ledger use: fixed once created.
        return [*fields, "sku"] if obj is not None else fields

    @admin.display(description="on hand", ordering="total_on_hand")
    def on_hand(self, product: Product) -> int:
        return product.total_on_hand

    @admin.display(description="allocated", ordering="total_allocated")
    def allocated(self, product: Product) -> int:
        return product.total_allocated

    @admin.display(description="available", ordering="total_available")
    def available(self, product: Product) -> int:
        return product.total_available

    @admin.display(description="lead time", ordering="lead_time_days")
    def lead_time(self, product: Product) -> str:
        days = product.effective_lead_time_days
        if days is None:
            return "-"
        return f"{days} days" if product.lead_time_days is not None else f"{days} days (supplier)"

    @admin.display(description="stock ledger")
    def stock_ledger(self, product: Product) -> str:
        if product.pk is None:
            return "-"
        url = reverse("admin:inventory_stockmovement_changelist")
        return format_html('<a href="{}?sku={}">Every stock movement of {}</a>', url, product.sku, product.sku)


@admin.register(StockLevel)
class StockLevelAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["product_sku", "product_name", "warehouse", "on_hand", "allocated", "available_units"]
    list_filter = ["warehouse", "product__discontinued"]
    search_fields = ["product__sku", "product__name", "warehouse__code"]
    list_select_related = ["product", "warehouse"]
    ordering = ["product__sku", "warehouse__priority"]
    fields = ["product", "warehouse", "on_hand", "allocated", "available_units"]
    readonly_fields = fields
    show_full_result_count = False

    def get_queryset(self, request: HttpRequest) -> QuerySet[StockLevel]:
        return super().get_queryset(request).annotate(available_units=F("on_hand") - F("allocated"))

    @admin.display(description="SKU", ordering="product__sku")
    def product_sku(self, level: StockLevel) -> str:
        return admin_link(level.product, level.product.sku)

    @admin.display(description="product", ordering="product__name")
    def product_name(self, level: StockLevel) -> str:
        return level.product.name

    @admin.display(description="available", ordering="available_units")
    def available_units(self, level: StockLevel) -> int:
        return level.on_hand - level.allocated


class ProductSkuFilter(ValueListFilter):
    title = "SKU"
    parameter_name = "sku"
    lookup = "stock_level__product__sku"


@admin.register(StockMovement)
class StockMovementAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ledger: append-only. Rows come from stock adjustments, receipts, shipments and returns."""

    list_display = ["created_at", "sku", "warehouse", "movement_type", "signed_quantity", "reason", "user", "source"]
    list_filter = [ProductSkuFilter, "movement_type", "stock_level__warehouse", "created_at"]
    search_fields = ["stock_level__product__sku", "stock_level__product__name", "reason", "source"]
    list_select_related = ["stock_level__product", "stock_level__warehouse", "user"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    fields = ["created_at", "stock_level", "movement_type", "quantity", "reason", "user", "source"]
    readonly_fields = fields

    @admin.display(description="SKU", ordering="stock_level__product__sku")
    def sku(self, movement: StockMovement) -> str:
        return admin_link(movement.stock_level.product, movement.stock_level.product.sku)

    @admin.display(description="warehouse", ordering="stock_level__warehouse__code")
    def warehouse(self, movement: StockMovement) -> str:
        return movement.stock_level.warehouse.code

    @admin.display(description="quantity", ordering="quantity")
    def signed_quantity(self, movement: StockMovement) -> str:
        return f"{movement.quantity:+d}"


@admin.register(Supplier)
class SupplierAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "lead_time_days"]
    search_fields = ["name", "email"]


class PurchaseOrderLineInline(admin.TabularInline):
    """Lines of a purchase order; quantities change through the purchasing services only."""

    model = PurchaseOrderLine
    fields = ["sku", "product_name", "quantity", "received", "outstanding_units", "arrival"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product", "purchase_order").order_by("id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="SKU")
    def sku(self, line: PurchaseOrderLine) -> str:
        return admin_link(line.product, line.product.sku)

    @admin.display(description="product")
    def product_name(self, line: PurchaseOrderLine) -> str:
        return line.product.name

    @admin.display(description="outstanding")
    def outstanding_units(self, line: PurchaseOrderLine) -> int:
        return line.outstanding

    @admin.display(description="expected")
    def arrival(self, line: PurchaseOrderLine):
        return line.arrival_date


PURCHASE_ORDER_COLORS = {
    PurchaseOrder.Status.DRAFT: "#777777",
    PurchaseOrder.Status.ORDERED: "#2f6fb3",
    PurchaseOrder.Status.PARTIALLY_RECEIVED: "#2a8a8a",
    PurchaseOrder.Status.RECEIVED: "#2e7d32",
    PurchaseOrder.Status.CANCELLED: "#777777",
}


class PurchaseOrderAdmin(ActionsOnlyAdminMixin, admin.ModelAdmin):
    """Purchase orders come from the API (or a buyer's tool); receiving and cancelling are actions that
    call the purchasing services (added in backorders/admin.py, which owns those workflows)."""

    list_display = ["number", "supplier", "warehouse", "status_badge", "expected_date", "units", "units_received"]
    list_filter = ["status", "warehouse", "supplier", "expected_date"]
    search_fields = ["number", "supplier__name", "lines__product__sku"]
    list_select_related = ["supplier", "warehouse"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ["number", "supplier", "warehouse", "status_badge", "expected_date", "created_at", "created_by"]
    readonly_fields = fields
    inlines = [PurchaseOrderLineInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PurchaseOrder]:
        return (
            super().get_queryset(request).annotate(units=Sum("lines__quantity"), units_received=Sum("lines__received"))
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, purchase_order: PurchaseOrder) -> str:
        return badge(purchase_order.get_status_display(), PURCHASE_ORDER_COLORS.get(purchase_order.status, "#777"))

    @admin.display(description="units", ordering="units")
    def units(self, purchase_order: PurchaseOrder) -> int:
        return purchase_order.units or 0

    @admin.display(description="received", ordering="units_received")
    def units_received(self, purchase_order: PurchaseOrder) -> int:
        return purchase_order.units_received or 0


admin.site.register(PurchaseOrder, PurchaseOrderAdmin)


@admin.register(PurchaseOrderLine)
class PurchaseOrderLineAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["purchase_order", "sku", "quantity", "received", "arrival", "status"]
    list_filter = ["purchase_order__status", "purchase_order__warehouse"]
    search_fields = ["purchase_order__number", "product__sku", "product__name"]
    list_select_related = ["purchase_order", "product"]
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    fields = ["purchase_order", "product", "quantity", "received", "expected_date"]
    readonly_fields = fields

    @admin.display(description="SKU", ordering="product__sku")
    def sku(self, line: PurchaseOrderLine) -> str:
        return admin_link(line.product, line.product.sku)

    @admin.display(description="expected")
    def arrival(self, line: PurchaseOrderLine):
        return line.arrival_date

    @admin.display(description="PO status", ordering="purchase_order__status")
    def status(self, line: PurchaseOrderLine) -> str:
        return line.purchase_order.get_status_display()
