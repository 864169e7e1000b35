"""The backorder workflows in the admin, and the backorder queue itself.

This app sits above inventory and orders (STYLE.md layering), so the admin parts that call its
workflows live here, by subclassing the inventory and orders admins and registering them again:
- products: availability badge, waiting units, next ETA, the "Adjust stock" form (stock_adjust_and_fill),
  CSV import/export, change history;
- stock levels: CSV stock counts (an adjustment to the counted quantity);
- purchase orders: "Receive" with per-line quantities and a fill preview, "Cancel", CSV import/export, history;
- orders: "Allocate stock" and "Cancel", and the backorder columns of the lines;
- backorders: the waiting lines in queue order, "Pin priority", "Set or clear the ETA", "Send a status update
  now", "Offer cancellation now", the ETA history and change history;
- the backorder policy, the compliance clocks and their timeline.
Admin classes only collect input and report: every change goes through a service. Each action needs the
permission of the role that does that work (backorders/roles.py): shipping and allocating
orders.ship_salesorder, cancelling orders.cancel_salesorder, ETAs backorders.change_backorder_eta, stock
inventory.add_stockmovement, the policy backorders.change_backorderpolicy.
"""

from collections.abc import Sequence
from datetime import date

from django.contrib import admin, messages
from django.contrib.admin.helpers import AdminForm
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import F, OuterRef, Prefetch, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Greatest
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV
from simple_history.admin import SimpleHistoryAdmin

import inventory.admin as inventory_admin
import orders.admin as orders_admin
from inventory.admin import (
    ActionsOnlyAdminMixin,
    ValueListFilter,
    admin_link,
    badge,
    count_noun,
    intermediate_context,
    redirect_to_next,
)
from inventory.exceptions import DomainError
from inventory.forms import StockAdjustmentForm, add_domain_error
from inventory.models import Product, PurchaseOrder, PurchaseOrderLine, StockLevel
from notifications.models import Notification
from orders.admin_paging import BigTableAdminMixin
from orders.exceptions import CannotCancel
from orders.models import OrderLine, SalesOrder
from orders.selectors import order_with_lines

from .dashboard import (
    consent_deadline_q,
    notice_due_q,
    purchase_orders_due_q,
    purchase_orders_open_q,
    refund_overdue_q,
    rolling_product_ids_q,
    ship_by_passed_lookup,
)
from .forms import CancelOrdersForm, PinPriorityForm, SetEtaForm
from .models import Backorder, BackorderPolicy, ComplianceClock, ComplianceEvent, EtaChange
from .pegging import open_supply, peg
from .policies import fill_strategy
from .resources import ProductResource, PurchaseOrderResource, StockCountResource
from .selectors import (
    AGE_BUCKETS,
    Availability,
    age_bucket_q,
    availability_for,
    backorder_fill_queue,
    lead_time_eta,
    overdue_ids,
    overdue_q,
    product_next_eta,
)
from .services import LineRequest, order_allocate_waiting, order_cancel, stock_adjust_and_fill
from .services.allocation import FillResult
from .services.bulk import BulkNoticeResult, backorders_offer_cancellation, backorders_send_status_update
from .services.catalog import product_update
from .services.eta import backorder_set_eta
from .services.policy import EDITABLE_FIELDS, REPEG_FIELDS, policy_update
from .services.priority import backorder_set_priority
from .services.purchasing import purchase_order_cancel, purchase_order_receive
from .services.shipping import order_ship_and_notify
from .status_links import status_token

AVAILABILITY_COLORS = {
    Availability.IN_STOCK: "#2e7d32",
    Availability.LOW_STOCK: "#b7791f",
    Availability.BACKORDER: "#6b46c1",
    Availability.OUT_OF_STOCK: "#c62828",
}


# Product fields whose change moves the ETAs of the product's waiting lines.
ETA_FIELDS = frozenset({"lead_time_days", "supplier", "discontinued", "backorders_allowed"})


def fill_summary(fill: FillResult, noun: str = "waiting line") -> str:
    """'3 waiting lines filled, 1 partly' — what a fill did for the queue."""
    if fill.lines_filled and fill.lines_partly_filled:
        return f"{count_noun(fill.lines_filled, noun)} filled, {fill.lines_partly_filled} partly"
    if fill.lines_filled:
        return f"{count_noun(fill.lines_filled, noun)} filled"
    if fill.lines_partly_filled:
        return f"{count_noun(fill.lines_partly_filled, noun)} partly filled"
    return f"no {noun}s filled"


def confirmed(request: HttpRequest) -> bool:
    """The intermediate page of an action was submitted (Django's delete_selected convention)."""
    return request.POST.get("post") == "yes"


class HistoryAdmin(SimpleHistoryAdmin):
    """Change history (django-simple-history) behind the "History" button. Read-only: reverting to a past
    version would write a stale copy over what the services wrote since, so it is off."""

    def revert_disabled(self, request, obj=None) -> bool:
        return True

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        if request.method == "POST":  # simple-history would save the posted old version, revert or not
            raise PermissionDenied
        return super().history_form_view(request, object_id, version_id, extra_context)


class CsvImportExportMixin(ImportExportMixin):
    """CSV import (upload, preview with row-level errors, confirm) and export, with the resources in
    backorders/resources.py. A file with any bad row cannot be confirmed, and changes nothing."""

    import_formats = [CSV]
    export_formats = [CSV]
    import_template_name = "admin/backorders/import.html"
    import_permission = ""  # "app_label.codename" needed to import
    import_help = ""  # what the file holds and what importing it does, shown on the import page

    def has_import_permission(self, request: HttpRequest) -> bool:
        return bool(self.import_permission) and request.user.has_perm(self.import_permission)

    def has_export_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)

    def get_import_context_data(self, **kwargs):
        return {**super().get_import_context_data(**kwargs), "import_help": self.import_help}

    def process_result(self, result, request):
        """The confirmed run failed (the data changed since the preview): it was rolled back; say so."""
        if result.has_errors() or result.has_validation_errors():
            problems = [str(error.error) for error in result.base_errors]
            problems += [f"line {line}: {errors[0].error}" for line, errors in result.row_errors()]
            problems += [
                f"line {row.number}: " + " ".join(text for texts in row.error_dict.values() for text in texts)
                for row in result.invalid_rows
            ]
            self.message_user(
                request,
                "Nothing was imported: the data changed since the preview. "
                + "; ".join(str(p) for p in problems[:5])
                + ". Upload the file again for a new preview.",
                messages.ERROR,
            )
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_import"))
        return super().process_result(result, request)


# Products


class AvailabilityFilter(admin.SimpleListFilter):
    """Filter products by what a storefront shows: the SQL form of selectors.availability_for over the
    products_with_stock annotation (tests/backorders/test_admin.py checks they agree)."""

    title = "availability"
    parameter_name = "availability"

    def lookups(self, request, model_admin):
        return Availability.choices

    def queryset(self, request, queryset):
        value = self.value()
        if value not in Availability.values:
            return queryset
        queryset = queryset.annotate(stock_threshold=Greatest(F("reorder_point"), F("safety_stock")))
        orderable = Q(backorders_allowed=True, discontinued=False)
        if value == Availability.IN_STOCK:
            return queryset.filter(total_available__gt=0).filter(total_available__gt=F("stock_threshold"))
        if value == Availability.LOW_STOCK:
            return queryset.filter(total_available__gt=0, total_available__lte=F("stock_threshold"))
        if value == Availability.BACKORDER:
            return queryset.filter(orderable).filter(total_available__lte=0)
        return queryset.filter(~orderable).filter(total_available__lte=0)


def products_next_eta(products: Sequence[Product], *, as_of: date | None = None) -> dict[int, date | None]:
    """selectors.product_next_eta for a page of products: a constant number of queries for any page.

    Same pegging as the selector (a new unit at the end of the queue against the open purchase order
    lines, else lead time). Needs the ProductAdmin annotations (total_available, waiting_units) and the
    supplier loaded. Products in stock or not orderable have no next ETA and are left out.
    """
    candidates = [p for p in products if p.total_available <= 0 and p.is_backorderable]
    if not candidates:
        return {}
    today = as_of or timezone.localdate()
    handling = BackorderPolicy.current().handling_days
    supply = open_supply(product_ids=[p.pk for p in candidates], as_of=today)
    etas = {}
    for product in candidates:
        waiting = product.waiting_units or 0
        pegs = peg(
            [waiting, 1] if waiting else [1],
            supply.get(product.pk, []),
            lead_eta=lead_time_eta(product=product, as_of=today, handling_days=handling),
            handling_days=handling,
            restockable=not product.discontinued,
        )
        etas[product.pk] = pegs[-1].eta
    return etas


class RollingBackorderFilter(admin.SimpleListFilter):
    """Products whose backorder queue has not emptied for the policy's rolling backorder days."""

    title = "rolling backorder"
    parameter_name = "rolling"

    def lookups(self, request, model_admin):
        days = BackorderPolicy.current().rolling_backorder_days
        return [("yes", f"Queue not empty for {days}+ days")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(rolling_product_ids_q(now=timezone.now(), policy=BackorderPolicy.current()))
        return queryset


class ProductChangeList(ChangeList):
    def get_results(self, request):
        super().get_results(request)
        etas = products_next_eta(self.result_list)
        for product in self.result_list:
            product.next_eta_for_list = etas.get(product.pk)


class ProductAdmin(CsvImportExportMixin, HistoryAdmin, inventory_admin.ProductAdmin):
    resource_classes = [ProductResource]
    import_permission = "inventory.change_product"
    skip_admin_log = True  # ProductResource logs each product it creates or changes, a batch at a time (admin_log)
    import_help = (
        "One row per product, keyed by SKU: a known SKU is updated (changes to lead time, supplier, discontinued "
        "or backorders allowed re-peg the ETAs of its waiting lines), a new SKU is created. Yes/no columns take "
        "yes or no; a blank cell keeps the current value, except lead_time_days and supplier, where blank means "
        "none. Stock is not imported here: use the stock count import on Stock levels."
    )
    list_display = [
        "sku",
        "name",
        "availability_badge",
        "on_hand",
        "allocated",
        "available",
        "waiting",
        "next_eta",
        "lead_time",
        "adjust_stock_link",
    ]
    list_filter = [AvailabilityFilter, RollingBackorderFilter, "discontinued", "backorders_allowed", "supplier"]
    show_full_result_count = False
    stock_fields = [
        "availability_badge",
        "next_eta_exact",
        "on_hand",
        "allocated",
        "available",
        "waiting",
        "stock_ledger",
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        waiting = (
            Backorder.objects.filter(product=OuterRef("pk"), status=Backorder.Status.WAITING)
            .order_by()
            .values("product")
            .annotate(units=Sum("quantity"))
            .values("units")
        )
        return super().get_queryset(request).annotate(waiting_units=Subquery(waiting[:1]))

    def get_changelist(self, request, **kwargs):
        return ProductChangeList

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if not request.user.has_perm("inventory.add_stockmovement"):
            columns.remove("adjust_stock_link")
        return columns

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        extra_context = extra_context or {}
        if object_id is not None and request.user.has_perm("inventory.add_stockmovement"):
            extra_context["adjust_stock_url"] = (
                f"{reverse('admin:inventory_stocklevel_adjust')}?product={object_id}"
                f"&next={reverse('admin:inventory_product_change', args=[object_id])}"
            )
        return super().changeform_view(request, object_id, form_url, extra_context)

    def has_import_permission(self, request: HttpRequest) -> bool:
        return super().has_import_permission(request) and request.user.has_perm("inventory.add_product")

    def get_import_data_kwargs(self, **kwargs):
        return {**super().get_import_data_kwargs(**kwargs), "admin_log": True}

    def save_model(self, request, obj, form, change):
        if not change:
            super().save_model(request, obj, form, change)
            return
        # Through the service: lead time, supplier or restockability re-peg the waiting lines' ETAs.
        product_update(product=obj, changes={name: getattr(obj, name) for name in form.changed_data})

    @admin.display(description="availability")
    def availability_badge(self, product: Product) -> str:
        if product.pk is None:
            return "-"
        availability = Availability(availability_for(product=product, available=product.total_available))
        label = availability.label + (" · discontinued" if product.discontinued else "")
        return badge(label, AVAILABILITY_COLORS[availability])

    @admin.display(description="waiting", ordering="waiting_units")
    def waiting(self, product: Product) -> str | int:
        if not getattr(product, "waiting_units", None):
            return 0
        url = reverse("admin:backorders_backorder_changelist")
        return format_html('<a href="{}?sku={}">{}</a>', url, product.sku, product.waiting_units)

    @admin.display(description="next ETA")
    def next_eta(self, product: Product) -> date | None:
        return getattr(product, "next_eta_for_list", None)

    @admin.display(description="next ETA (for one more unit ordered now)")
    def next_eta_exact(self, product: Product) -> date | str:
        if product.pk is None:
            return "-"
        eta = product_next_eta(product=product, available=product.total_available)
        if eta is not None:
            return eta
        if product.total_available > 0:
            return "In stock: ships now."
        return "None: not orderable, or no restock date is known."

    @admin.display(description="")
    def adjust_stock_link(self, product: Product) -> str:
        url = reverse("admin:inventory_stocklevel_adjust")
        return format_html('<a href="{}?product={}">Adjust stock</a>', url, product.pk)


class StockLevelAdmin(CsvImportExportMixin, inventory_admin.StockLevelAdmin):
    """Stock per warehouse, read-only, plus the stock adjustment form and the stock count import (the only
    admin writes of on_hand, both through stock_adjust_and_fill)."""

    adjust_template = "admin/inventory/stocklevel/adjust_stock.html"
    import_export_change_list_template = "admin/inventory/stocklevel/change_list_import_export.html"
    resource_classes = [StockCountResource]
    import_permission = "inventory.add_stockmovement"
    import_help = (
        "A stock count: export the stock levels (filter them first to count one warehouse), write what you "
        "counted in the 'counted' column, and import the file. Each changed count becomes one adjustment in the "
        "stock ledger with the reason 'Stock count import', and waiting lines are filled when stock went up. "
        "Rows with a blank or unchanged count are skipped. A count below what is allocated to orders is refused."
    )

    def get_urls(self):
        return [
            path("adjust/", self.admin_site.admin_view(self.adjust_stock_view), name="inventory_stocklevel_adjust"),
            *super().get_urls(),
        ]

    def adjust_stock_view(self, request: HttpRequest) -> HttpResponse:
        """Change on_hand by a signed delta with a reason: one ledger row, then the queue fills."""
        if not request.user.has_perm("inventory.add_stockmovement"):
            raise PermissionDenied
        form = StockAdjustmentForm(
            request.POST if request.method == "POST" else None,
            initial={key: request.GET[key] for key in ("product", "warehouse") if request.GET.get(key)},
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                movement, fill = stock_adjust_and_fill(
                    product=data["product"],
                    warehouse=data["warehouse"],
                    delta=data["delta"],
                    reason=data["reason"],
                    acting_user=request.user,
                    source="admin",
                )
            except DomainError as exc:
                add_domain_error(form, exc)
            else:
                on_hand = StockLevel.objects.values_list("on_hand", flat=True).get(pk=movement.stock_level_id)
                message = f"{data['delta']:+d} {data['product'].sku} at {data['warehouse'].code}: on hand {on_hand}"
                if data["delta"] > 0:
                    message += f"; {fill_summary(fill)}"
                self.message_user(request, message + ".", messages.SUCCESS)
                return redirect_to_next(request) or HttpResponseRedirect(
                    reverse("admin:inventory_product_change", args=[data["product"].pk])
                )
        product_id = form.data.get("product") if form.is_bound else form.initial.get("product")
        levels = (
            StockLevel.objects.filter(product_id=product_id).select_related("product", "warehouse")
            if product_id and str(product_id).isdigit()
            else StockLevel.objects.none()
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Adjust stock",
            "opts": self.model._meta,
            "adminform": AdminForm(form, [(None, {"fields": list(form.fields)})], {}),
            "form": form,
            "levels": levels,
            "next": request.POST.get("next") or request.GET.get("next", ""),
            "media": self.media + form.media,
        }
        return TemplateResponse(request, self.adjust_template, context)


class PurchaseOrderArrivalFilter(admin.SimpleListFilter):
    title = "arrival"
    parameter_name = "arrival"

    def lookups(self, request, model_admin):
        return [("open", "Still to receive"), ("due", "Due in (expected by today, not fully received)")]

    def queryset(self, request, queryset):
        if self.value() == "open":
            return queryset.filter(purchase_orders_open_q())
        if self.value() == "due":
            return queryset.filter(purchase_orders_due_q(as_of=timezone.localdate()))
        return queryset


RECEIVE_FIELD = "receive-{}"
RECEIVE_PREVIEW_LIMIT = 25  # fill entries listed per purchase order on the receive page


class PurchaseOrderAdmin(CsvImportExportMixin, HistoryAdmin, inventory_admin.PurchaseOrderAdmin):
    actions = ["receive_outstanding", "cancel_purchase_orders"]
    list_filter = ["status", PurchaseOrderArrivalFilter, "warehouse", "supplier", "expected_date"]
    receive_template = "admin/inventory/purchaseorder/receive.html"
    resource_classes = [PurchaseOrderResource]
    import_permission = "inventory.add_purchaseorder"
    import_help = (
        "One row per purchase order line; the rows with the same number make one new purchase order (draft or "
        "ordered; blank status means ordered), created with its lines at once so the ETAs of the waiting lines "
        "re-peg to it. Every row of one purchase order repeats its supplier, warehouse code, expected date "
        "(YYYY-MM-DD) and status; line_expected_date is optional. Existing purchase orders are not changed."
    )

    @staticmethod
    def _receive_quantities(
        request: HttpRequest, purchase_orders: list[PurchaseOrder]
    ) -> tuple[dict[int, int], dict[int, str]]:
        """Units to receive per PO line id (a line without a posted value: everything outstanding), and the
        errors per line id for posted values that are not a whole number between 0 and what is outstanding."""
        quantities: dict[int, int] = {}
        errors: dict[int, str] = {}
        for po in purchase_orders:
            for line in po.lines.all():
                raw = request.POST.get(RECEIVE_FIELD.format(line.pk))
                if raw is None:
                    quantities[line.pk] = line.outstanding
                    continue
                raw = raw.strip() or "0"
                if not raw.isdigit():
                    errors[line.pk] = "Enter a whole number of units (0 to skip the line)."
                elif int(raw) > line.outstanding:
                    errors[line.pk] = (
                        f"Only {line.outstanding} of {line.quantity} are outstanding ({line.received} received)."
                    )
                else:
                    quantities[line.pk] = int(raw)
        return quantities, errors

    @staticmethod
    def _line_requests(po: PurchaseOrder, quantities: dict[int, int]) -> list[LineRequest]:
        return [
            LineRequest(sku=line.product.sku, quantity=quantities[line.pk])
            for line in po.lines.all()
            if quantities.get(line.pk)
        ]

    @admin.action(description="Receive (enter quantities per line, preview the fill)", permissions=["change"])
    def receive_outstanding(self, request: HttpRequest, queryset: QuerySet[PurchaseOrder]):
        """An intermediate page with a quantity per outstanding line (everything outstanding to start with) and
        the fill preview for those quantities (a dry run: who gets served); "Update preview" recomputes it,
        "Receive" puts the units on hand through the ledger and fills the queues."""
        purchase_orders = list(
            queryset.select_related("warehouse", "supplier")
            .prefetch_related(
                Prefetch("lines", queryset=PurchaseOrderLine.objects.select_related("product").order_by("pk"))
            )
            .order_by("expected_date", "pk")
        )
        quantities, errors = self._receive_quantities(request, purchase_orders)
        if confirmed(request) and not errors:
            nothing: list[str] = []
            for po in purchase_orders:
                lines = self._line_requests(po, quantities)
                if not lines:
                    nothing.append(po.number)
                    continue
                try:
                    result = purchase_order_receive(purchase_order=po, lines=lines, acting_user=request.user)
                except DomainError as exc:
                    self.message_user(request, f"{po.number}: {exc.detail}", messages.WARNING)
                else:
                    self.message_user(request, result.summary() + ".", messages.SUCCESS)
            if nothing:
                self.message_user(
                    request,
                    f"Nothing received on {orders_admin.numbers_list(nothing)} (no units entered, or nothing "
                    "outstanding).",
                    messages.WARNING,
                )
            return redirect_to_next(request)
        sections = [self._receive_section(request, po, quantities, errors) for po in purchase_orders]
        context = intermediate_context(
            self,
            request,
            title="Receive purchase orders",
            sections=sections,
            errors=bool(errors),
            action_name="receive_outstanding",
            selected=[po.pk for po in purchase_orders],
            can_confirm=any(section["lines"] for section in sections),
        )
        return TemplateResponse(request, self.receive_template, context)

    def _receive_section(
        self, request: HttpRequest, po: PurchaseOrder, quantities: dict[int, int], errors: dict[int, str]
    ) -> dict:
        receivable = po.status not in (PurchaseOrder.Status.RECEIVED, PurchaseOrder.Status.CANCELLED)
        rows = [
            {
                "line": line,
                "field": RECEIVE_FIELD.format(line.pk),
                "value": request.POST.get(RECEIVE_FIELD.format(line.pk), quantities.get(line.pk, 0)),
                "error": errors.get(line.pk, ""),
            }
            for line in po.lines.all()
            if line.outstanding and receivable
        ]
        section = {"po": po, "lines": rows, "note": "", "received": [], "fills": [], "more": 0, "summary": ""}
        if not receivable:
            section["note"] = f"{po.get_status_display()}: nothing can be received on it."
            return section
        if not rows:
            section["note"] = "Nothing outstanding."
            return section
        lines = self._line_requests(po, quantities)
        if errors or not lines:
            section["note"] = "Correct the quantities to see the preview." if errors else "No units entered."
            return section
        try:
            preview = purchase_order_receive(purchase_order=po, lines=lines, acting_user=request.user, dry_run=True)
        except DomainError as exc:
            section["note"] = exc.detail
            return section
        skus = {line.product_id: line.product.sku for line in po.lines.all()}
        section["summary"] = preview.summary().removeprefix(f"{po.number}: ")
        section["received"] = [f"{units} × {sku} into {po.warehouse.code}" for sku, units in preview.received.items()]
        section["fills"] = [
            {
                "order": entry.order_number,
                "customer": entry.customer_email,
                "units": entry.units,
                "sku": skus.get(entry.product_id, ""),
                "still_waiting": entry.still_waiting,
            }
            for entry in preview.fill.entries[:RECEIVE_PREVIEW_LIMIT]
        ]
        section["more"] = max(len(preview.fill.entries) - RECEIVE_PREVIEW_LIMIT, 0)
        return section

    @admin.action(description="Cancel what is outstanding", permissions=["change"])
    def cancel_purchase_orders(self, request: HttpRequest, queryset: QuerySet[PurchaseOrder]):
        purchase_orders = list(queryset.order_by("expected_date", "pk"))
        if confirmed(request):
            cancelled: list[str] = []
            for po in purchase_orders:
                try:
                    purchase_order_cancel(purchase_order=po, acting_user=request.user)
                except DomainError as exc:
                    self.message_user(request, f"{po.number}: {exc.detail}", messages.WARNING)
                else:
                    cancelled.append(po.number)
            if cancelled:
                self.message_user(
                    request,
                    f"{count_noun(len(cancelled), 'purchase order')} cancelled "
                    f"({orders_admin.numbers_list(cancelled)}); the ETAs of their waiting lines were re-pegged.",
                    messages.SUCCESS,
                )
            return redirect_to_next(request)
        context = intermediate_context(
            self,
            request,
            title="Cancel purchase orders",
            intro="What is still outstanding is cancelled; received units stay received. Waiting lines re-peg.",
            items=[{"title": po.number, "note": po.get_status_display()} for po in purchase_orders],
            action_name="cancel_purchase_orders",
            selected=[po.pk for po in purchase_orders],
            confirm_label="Yes, cancel",
            can_confirm=bool(purchase_orders),
        )
        return TemplateResponse(request, "admin/action_intermediate.html", context)


# Orders


class OrderLineInline(orders_admin.OrderLineInline):
    fields = [*orders_admin.OrderLineInline.fields, "backorder_status", "eta", "priority"]
    readonly_fields = fields

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("backorder")

    @staticmethod
    def _backorder(line: OrderLine) -> Backorder | None:
        try:
            return line.backorder
        except Backorder.DoesNotExist:
            return None

    @admin.display(description="backorder")
    def backorder_status(self, line: OrderLine) -> str:
        backorder = self._backorder(line)
        if backorder is None:
            return "-"
        if backorder.status == Backorder.Status.WAITING:
            text = f"Waiting: {backorder.quantity} of {backorder.original_quantity}"
        else:
            text = f"{backorder.get_status_display()} ({backorder.original_quantity} backordered)"
        return admin_link(backorder, text)

    @admin.display(description="ETA")
    def eta(self, line: OrderLine) -> str:
        backorder = self._backorder(line)
        if backorder is None or backorder.status != Backorder.Status.WAITING:
            return "-"
        if backorder.eta is None:
            return "not known"
        return f"{backorder.eta:%Y-%m-%d} ({backorder.get_eta_source_display() or 'no source'})"

    @admin.display(description="pinned priority")
    def priority(self, line: OrderLine) -> str | int:
        backorder = self._backorder(line)
        return backorder.priority if backorder is not None else "-"


class SalesOrderAdmin(orders_admin.SalesOrderAdmin):
    ship_service = staticmethod(order_ship_and_notify)
    actions = ["allocate_stock", "ship_allocated", "cancel_orders"]
    inlines = [OrderLineInline, orders_admin.ShipmentInline]
    fulfilment_fields = [*orders_admin.SalesOrderAdmin.fulfilment_fields, "backorders_link", "customer_view"]
    cancel_template = "admin/orders/salesorder/cancel_confirmation.html"

    @admin.display(description="customer's view")
    def customer_view(self, order: SalesOrder) -> str:
        """The status page the emails link to, to see what the customer sees (it acts as the customer)."""
        if order.pk is None:
            return "-"
        emails = reverse("admin:notifications_notification_changelist")
        return format_html(
            '<a href="{}" target="_blank" rel="noopener">Status page</a> (what the customer sees; its buttons act '
            'for the customer) · <a href="{}?order={}">Emails about {}</a>',
            reverse("status-page", args=[status_token(order)]),
            emails,
            order.number,
            order.number,
        )

    @admin.display(description="backorders")
    def backorders_link(self, order: SalesOrder) -> str:
        if order.pk is None:
            return "-"
        url = reverse("admin:backorders_backorder_changelist")
        return format_html('<a href="{}?order={}&amp;status=all">Backorders of {}</a>', url, order.number, order.number)

    @admin.action(description="Allocate stock", permissions=["ship"])
    def allocate_stock(self, request: HttpRequest, queryset: QuerySet[SalesOrder]):
        """Allocate available stock to each order's waiting lines (oldest order first)."""
        orders = list(queryset.order_by("placed_at", "pk"))
        total = FillResult()
        nothing_waiting: list[str] = []
        no_stock: list[str] = []
        for order in orders:
            try:
                result = order_allocate_waiting(order=order, acting_user=request.user)
            except DomainError as exc:
                self.message_user(request, f"{order.number}: {exc.detail}", messages.ERROR)
                continue
            total.merge(result)
            if not result.units:
                (no_stock if order.units_backordered else nothing_waiting).append(order.number)
        parts = [f"{count_noun(len(orders), 'order')}: {count_noun(total.units, 'unit')} allocated"]
        if total.units:
            parts[0] += f" ({fill_summary(total, noun='line')})"
        if nothing_waiting:
            parts.append(f"{count_noun(len(nothing_waiting), 'order')} had nothing waiting")
        if no_stock:
            verb = "waits" if len(no_stock) == 1 else "wait"
            parts.append(
                f"{count_noun(len(no_stock), 'order')} still {verb} for stock ({orders_admin.numbers_list(no_stock)})"
            )
        self.message_user(request, "; ".join(parts) + ".", messages.SUCCESS if total.units else messages.WARNING)
        return redirect_to_next(request)

    @admin.action(description="Cancel", permissions=["cancel"])
    def cancel_orders(self, request: HttpRequest, queryset: QuerySet[SalesOrder]):
        """Confirm on an intermediate page listing what will be cancelled, then cancel through order_cancel."""
        form = CancelOrdersForm(request.POST if confirmed(request) else None)
        orders = list(order_with_lines(queryset.order_by("placed_at", "pk")))
        if confirmed(request) and form.is_valid():
            self._cancel(request, orders, waiting_only=form.cleaned_data["scope"] == CancelOrdersForm.WAITING)
            return redirect_to_next(request)
        rows = []
        for order in orders:
            lines = [line for line in order.lines.all() if line.outstanding]
            rows.append({"order": order, "lines": lines, "units": sum(line.outstanding for line in lines)})
        context = intermediate_context(
            self,
            request,
            title="Cancel orders",
            rows=rows,
            cancellable=[row for row in rows if row["units"]],
            nothing=[row for row in rows if not row["units"]],
            form=form,
            action_name="cancel_orders",
            selected=[order.pk for order in orders],
        )
        return TemplateResponse(request, self.cancel_template, context)

    def _cancel(self, request: HttpRequest, orders: list[SalesOrder], *, waiting_only: bool) -> None:
        cancelled: list[str] = []
        nothing: list[str] = []
        units = released = closed = 0
        refill = FillResult()
        for order in orders:
            lines = None
            if waiting_only:
                # The waiting units as read now (order_cancel takes waiting units before allocated ones).
                lines = [
                    LineRequest(sku=line.product.sku, quantity=line.backordered)
                    for line in order.lines.all()
                    if line.backordered
                ]
                if not lines:
                    nothing.append(order.number)
                    continue
            try:
                result = order_cancel(order=order, lines=lines, acting_user=request.user)
            except CannotCancel as exc:
                if lines is None and not exc.fields:
                    nothing.append(order.number)
                else:
                    self.message_user(request, f"{order.number}: {exc.detail}", messages.ERROR)
                continue
            except DomainError as exc:
                self.message_user(request, f"{order.number}: {exc.detail}", messages.ERROR)
                continue
            cancelled.append(order.number)
            units += result.units_cancelled
            released += result.units_released
            closed += result.backorders_closed
            refill.merge(result.refill)
        if cancelled:
            what = "backordered units cancelled" if waiting_only else "cancelled"
            message = (
                f"{count_noun(len(cancelled), 'order')} {what}: {count_noun(units, 'unit')} "
                f"({released} released from allocations, {count_noun(closed, 'backorder')} closed)"
            )
            if refill.units:
                message += f"; the released stock went to other orders: {fill_summary(refill)}"
            self.message_user(request, message + ".", messages.SUCCESS)
        if nothing:
            left = "nothing waiting" if waiting_only else "nothing left to cancel"
            self.message_user(
                request,
                f"{count_noun(len(nothing), 'order')} had {left} ({orders_admin.numbers_list(nothing)}).",
                messages.WARNING,
            )


# Backorders


class BackorderStatusFilter(admin.SimpleListFilter):
    """Status, showing the waiting lines (the queue) unless asked otherwise."""

    title = "status"
    parameter_name = "status"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [*Backorder.Status.choices, (self.ALL, "All")]

    def current(self) -> str:
        return self.value() or Backorder.Status.WAITING

    def queryset(self, request, queryset):
        value = self.current()
        return queryset if value == self.ALL else queryset.filter(status=value)

    def choices(self, changelist):
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.current() == lookup,
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }


def filter_by_few_ids(queryset: QuerySet, ids: QuerySet, otherwise: Q) -> QuerySet:
    """`queryset` narrowed to `ids` as a list of values when there are few (the planner then knows there are few
    and fetches them by id), else by the condition `otherwise`, which the list walks in its index order."""
    few = orders_admin.few_ids(ids)
    return queryset.filter(otherwise) if few is None else queryset.filter(pk__in=few)


class OverdueFilter(admin.SimpleListFilter):
    title = "overdue"
    parameter_name = "overdue"

    def lookups(self, request, model_admin):
        return [("yes", "Overdue (ETA or ship-by date passed)"), ("no", "On time")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "yes":
            return filter_by_few_ids(queryset, overdue_ids(as_of=today), overdue_q(as_of=today))
        if self.value() == "no":
            return queryset.exclude(overdue_q(as_of=today))
        return queryset


class AgeBucketFilter(admin.SimpleListFilter):
    title = "waiting for (days)"
    parameter_name = "age"

    def lookups(self, request, model_admin):
        return [(bucket, f"{bucket} days") for bucket in AGE_BUCKETS]

    def queryset(self, request, queryset):
        if self.value() in AGE_BUCKETS:
            return queryset.filter(age_bucket_q(self.value(), as_of=timezone.localdate()))
        return queryset


class ShipByFilter(admin.SimpleListFilter):
    """Waiting lines past their ship-by date (the compliance clock's T, else the promised or default date)."""

    title = "ship-by date"
    parameter_name = "ship_by"

    def lookups(self, request, model_admin):
        return [("passed", "Passed (should have shipped)")]

    def queryset(self, request, queryset):
        if self.value() != "passed":
            return queryset
        ids, passed = ship_by_passed_lookup(as_of=timezone.localdate(), policy=BackorderPolicy.current())
        return filter_by_few_ids(queryset, ids, passed)


class BackorderOrderFilter(ValueListFilter):
    title = "order"
    parameter_name = "order"
    lookup = "line__order__number"


class BackorderSkuFilter(ValueListFilter):
    """`?sku=MUG`: one product's lines (links from products and the dashboard). Not a list of every product:
    on a big catalog that sidebar would be thousands of rows."""

    title = "product (SKU)"
    parameter_name = "sku"
    lookup = "product__sku"

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        # By the product's id, not a join on its SKU: the planner then reads that product's range of the queue
        # index in order and knows from the statistics how long its queue is (a join makes it guess the average).
        product_ids = list(Product.objects.filter(sku=self.value()).values_list("pk", flat=True))
        return queryset.filter(product_id__in=product_ids)


def backorder_search_q(term: str) -> Q:
    """The backorders whose product's SKU or name contains `term`, or whose order number or customer email starts
    with it (the fields search_fields lists).

    Both halves are resolved to ids first where there are few (small queries: the product table, and the orders
    through their indexes, see orders.admin.order_search_q), so that PostgreSQL sees `product_id IN (...) OR id IN
    (...)`: it knows from the statistics how long those products' queues are (FILL-BIG: 100,000 lines) and walks
    the queue index in order. One OR across the product, order and customer joins reads every backorder, and a
    join to the matching products makes the planner guess an average queue and sort a 100,000-line one.
    """
    term = term.strip()
    products = Product.objects.order_by().filter(Q(sku__icontains=term) | Q(name__icontains=term))
    orders = SalesOrder.objects.order_by().filter(orders_admin.order_search_q(term, names=False))
    by_order = orders_admin.ids_or_subquery(Backorder.objects.order_by().filter(line__order__in=orders))
    return Q(product_id__in=list(products.values_list("pk", flat=True))) | Q(pk__in=by_order)


def source_label(source: str) -> str:
    return Backorder.EtaSource(source).label if source in Backorder.EtaSource.values else (source or "-")


class EtaChangeInline(admin.TabularInline):
    model = EtaChange
    fields = ["created_at", "old_eta", "new_eta", "source", "reason", "user"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "ETA history"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="new source")
    def source(self, change: EtaChange) -> str:
        return source_label(change.new_source)


@admin.register(Backorder)
class BackorderAdmin(BigTableAdminMixin, ActionsOnlyAdminMixin, HistoryAdmin):
    list_display = [
        "product_sku",
        "order_number",
        "customer_email",
        "customer_tier",
        "waiting_units",
        "status",
        "priority",
        "eta_date",
        "eta_source_label",
        "age_days",
    ]
    change_list_template = "admin/backorders/backorder/change_list.html"
    list_filter = [
        BackorderStatusFilter,
        OverdueFilter,
        AgeBucketFilter,
        ShipByFilter,
        BackorderSkuFilter,
        BackorderOrderFilter,
        "eta_source",
        "line__order__customer__tier",
        "line__order__ship_complete",
    ]
    search_fields = ["product__sku", "product__name", "line__order__number", "line__order__customer__email"]
    search_help_text = "Part of a SKU or product name; an order number or customer email, or how it starts."
    list_select_related = ["product", "line__order__customer"]
    actions = ["set_eta", "send_status_update", "offer_cancellation", "pin_priority"]
    object_history_template = "admin/backorders/backorder/object_history.html"
    fields = [
        "product_link",
        "order_link",
        "customer_email",
        "customer_tier",
        "quantity",
        "original_quantity",
        "status",
        "priority",
        "queue_position",
        "placed_at",
        "age_days",
        "eta_date",
        "eta_source_label",
        "created_at",
        "closed_at",
        "compliance_timeline",
    ]
    readonly_fields = fields
    inlines = [EtaChangeInline]
    object_actions_query = "?status=all"  # the default list shows waiting lines only

    def get_ordering(self, request):
        """Per product, the queue order of the policy's fill strategy (pinned priority first).

        Products come in id order, not SKU order: (product, priority, placed_at, line) is the partial index of the
        waiting queue, so under the FIFO strategy a page of waiting lines is a range of that index. Ordered by SKU
        (another table), PostgreSQL joins and sorts a product's whole queue (100,000 lines: over a second)."""
        return ["product_id", *fill_strategy().queue_order()]

    def get_search_results(self, request, queryset, search_term):
        if not search_term.strip():
            return queryset, False
        return queryset.filter(backorder_search_q(search_term)), False

    def get_list_display(self, request):
        columns = list(super().get_list_display(request))
        if request.GET.get(BackorderStatusFilter.parameter_name, Backorder.Status.WAITING) != BackorderStatusFilter.ALL:
            columns.remove("status")  # one status is listed: the column would repeat it on every row
        return columns

    def changelist_view(self, request, extra_context=None):
        strategy = BackorderPolicy.FillStrategy(BackorderPolicy.current().fill_strategy)
        context = {
            "title": "Backorder queue",
            "queue_order": f"Per product in fill order: pinned priority first, then {strategy.label.lower()}.",
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @admin.display(description="waiting", ordering="quantity")
    def waiting_units(self, backorder: Backorder) -> str:
        if backorder.quantity == backorder.original_quantity:
            return str(backorder.quantity)
        return f"{backorder.quantity} of {backorder.original_quantity}"

    def has_change_eta_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("backorders.change_backorder_eta")

    @admin.display(description="SKU", ordering="product__sku")
    def product_sku(self, backorder: Backorder) -> str:
        return admin_link(backorder.product, backorder.product.sku)

    @admin.display(description="product")
    def product_link(self, backorder: Backorder) -> str:
        return admin_link(backorder.product)

    @admin.display(description="order", ordering="line__order__number")
    def order_number(self, backorder: Backorder) -> str:
        return admin_link(backorder.line.order, backorder.line.order.number)

    @admin.display(description="order")
    def order_link(self, backorder: Backorder) -> str:
        return self.order_number(backorder)

    @admin.display(description="customer", ordering="line__order__customer__email")
    def customer_email(self, backorder: Backorder) -> str:
        return backorder.line.order.customer.email

    @admin.display(description="tier", ordering="line__order__customer__tier")
    def customer_tier(self, backorder: Backorder) -> str:
        return backorder.line.order.customer.get_tier_display()

    @admin.display(description="ETA", ordering="eta")
    def eta_date(self, backorder: Backorder) -> str:
        return backorder.eta.isoformat() if backorder.eta else "-"

    @admin.display(description="ETA source", ordering="eta_source")
    def eta_source_label(self, backorder: Backorder) -> str:
        return backorder.get_eta_source_display() or "-"

    @admin.display(description="age (days)", ordering="-placed_at")
    def age_days(self, backorder: Backorder) -> int:
        end = backorder.closed_at or timezone.now()
        return (end - backorder.placed_at).days

    @admin.display(description="place in queue")
    def queue_position(self, backorder: Backorder) -> str:
        if backorder.status != Backorder.Status.WAITING:
            return "-"
        queue = list(
            backorder_fill_queue(product_id=backorder.product_id, strategy=fill_strategy()).values_list(
                "pk", "quantity"
            )
        )
        ids = [pk for pk, _ in queue]
        if backorder.pk not in ids:
            return "-"
        index = ids.index(backorder.pk)
        ahead = sum(quantity for _, quantity in queue[:index])
        return f"{index + 1} of {len(queue)} waiting lines; {count_noun(ahead, 'unit')} ahead of it"

    def _selection_items(self, backorders: list[Backorder]) -> list[dict]:
        return [
            {
                "title": f"{b.product.sku} on {b.line.order.number}",
                "note": (
                    f"{b.line.order.customer.email} ({b.line.order.customer.get_tier_display()}), "
                    f"{b.quantity} {b.get_status_display().lower()}, priority {b.priority}, "
                    f"ETA {b.eta or 'not known'}"
                ),
            }
            for b in backorders
        ]

    @admin.action(description="Pin priority", permissions=["change"])
    def pin_priority(self, request: HttpRequest, queryset: QuerySet[Backorder]):
        """Ask for a priority on an intermediate page, then set it on the selected waiting lines."""
        form = PinPriorityForm(request.POST if confirmed(request) else None)
        if confirmed(request) and form.is_valid():
            selected = queryset.count()
            priority = form.cleaned_data["priority"]
            try:
                changed = backorder_set_priority(backorders=queryset, priority=priority, acting_user=request.user)
            except DomainError as exc:
                add_domain_error(form, exc)
            else:
                lines = count_noun(changed, "waiting line")
                message = f"Unpinned {lines}" if priority == 0 else f"Pinned {lines} at priority {priority}"
                skipped = selected - changed
                if skipped:
                    message += f"; {count_noun(skipped, 'selected line')} not waiting, left as is"
                self.message_user(request, message + ".", messages.SUCCESS if changed else messages.WARNING)
                return redirect_to_next(request)
        backorders = list(queryset.select_related("product", "line__order__customer"))
        context = intermediate_context(
            self,
            request,
            title="Pin priority",
            intro=(
                "A pinned priority puts waiting lines ahead of the fill strategy in their product's queue: higher "
                "is filled first when stock arrives. Only waiting lines change; their ETAs are re-pegged."
            ),
            items=self._selection_items(backorders),
            adminform=AdminForm(form, [(None, {"fields": ["priority"]})], {}),
            action_name="pin_priority",
            selected=[b.pk for b in backorders],
            confirm_label="Pin priority",
            can_confirm=bool(backorders),
        )
        return TemplateResponse(request, "admin/action_intermediate.html", context)

    @admin.action(description="Set or clear the ETA", permissions=["change_eta"])
    def set_eta(self, request: HttpRequest, queryset: QuerySet[Backorder]):
        """Customer service sets a manual ETA with a reason (it wins until cleared), or clears it."""
        form = SetEtaForm(request.POST if confirmed(request) else None)
        if confirmed(request) and form.is_valid():
            data = form.cleaned_data
            eta = None if data["clear"] else data["eta"]
            try:
                changed = backorder_set_eta(
                    backorders=queryset, eta=eta, reason=data["reason"], acting_user=request.user
                )
            except DomainError as exc:
                add_domain_error(form, exc)
            else:
                lines = count_noun(changed, "waiting line")
                message = f"Manual ETA cleared on {lines}" if eta is None else f"ETA set to {eta} on {lines}"
                unchanged = len(queryset) - changed
                if unchanged:
                    why = "no manual ETA to clear" if eta is None else "already at that date"
                    message += f"; {count_noun(unchanged, 'selected line')} left as is (not waiting, or {why})"
                self.message_user(request, message + ".", messages.SUCCESS if changed else messages.WARNING)
                return redirect_to_next(request)
        backorders = list(queryset.select_related("product", "line__order__customer"))
        context = intermediate_context(
            self,
            request,
            title="Set or clear the ETA",
            intro=(
                "A manual ETA wins over the computed one until it is cleared; every change is kept with who and "
                "why. Only waiting lines change. The customer is told when the date moves enough to matter."
            ),
            items=self._selection_items(backorders),
            adminform=AdminForm(form, [(None, {"fields": ["eta", "clear", "reason"]})], {}),
            action_name="set_eta",
            selected=[b.pk for b in backorders],
            confirm_label="Save ETA",
            can_confirm=bool(backorders),
            media=self.media + form.media,
        )
        return TemplateResponse(request, "admin/action_intermediate.html", context)

    def _notice_action(
        self,
        request: HttpRequest,
        queryset: QuerySet[Backorder],
        *,
        action_name: str,
        title: str,
        intro: str,
        confirm_label: str,
        send,
        what: str,
        already: str,
    ):
        """Confirm on an intermediate page listing who gets the email, then queue it through `send`."""
        if confirmed(request):
            result: BulkNoticeResult = send(backorders=queryset)
            parts = [f"{count_noun(result.queued, what)} queued for sending"]
            if result.already:
                parts.append(f"{count_noun(result.already, 'line')} skipped: {already}")
            if result.not_waiting:
                parts.append(f"{count_noun(result.not_waiting, 'line')} skipped: no longer waiting")
            self.message_user(request, "; ".join(parts) + ".", messages.SUCCESS if result.queued else messages.WARNING)
            return redirect_to_next(request)
        backorders = list(queryset.select_related("product", "line__order__customer"))
        context = intermediate_context(
            self,
            request,
            title=title,
            intro=intro,
            items=self._selection_items(backorders),
            action_name=action_name,
            selected=[b.pk for b in backorders],
            confirm_label=confirm_label,
            can_confirm=bool(backorders),
        )
        return TemplateResponse(request, "admin/action_intermediate.html", context)

    @admin.action(description="Send a status update now", permissions=["change"])
    def send_status_update(self, request: HttpRequest, queryset: QuerySet[Backorder]):
        return self._notice_action(
            request,
            queryset,
            action_name="send_status_update",
            title="Send a status update now",
            intro=(
                "Each customer gets an email about the selected line now: what still waits, its ETA and a link to "
                "their status page (keep waiting, cancel, or pick a substitute). At most one such email per line a "
                "day; the regular updates of the daily scan carry on. Lines that no longer wait are skipped."
            ),
            confirm_label="Send status updates",
            send=backorders_send_status_update,
            what="status update",
            already="one was already sent today",
        )

    @admin.action(description="Offer cancellation now", permissions=["change"])
    def offer_cancellation(self, request: HttpRequest, queryset: QuerySet[Backorder]):
        return self._notice_action(
            request,
            queryset,
            action_name="offer_cancellation",
            title="Offer cancellation now",
            intro=(
                "Each customer gets the cancellation offer for the selected line now: a one-click cancel with a full "
                "refund, in-stock substitutes, and the policy's goodwill coupon if one is set. A line is offered "
                "this once: the daily scan will not offer it again. Lines that no longer wait are skipped."
            ),
            confirm_label="Send cancellation offers",
            send=backorders_offer_cancellation,
            what="cancellation offer",
            already="it was offered before",
        )

    def history_view(self, request, object_id, extra_context=None):
        """The change history, with what the queue services record themselves: the ETA history, the compliance
        timeline and the emails (fills, ETA and priority changes are set-based writes that skip simple-history)."""
        backorder = self.get_object(request, object_id)
        extra = {}
        if backorder is not None:
            extra = {
                "eta_changes": backorder.eta_changes.select_related("user").order_by("created_at", "id"),
                "timeline": render_timeline(backorder.line_id),
                "emails": Notification.objects.filter(
                    Q(line_id=backorder.line_id) | Q(order_id=backorder.line.order_id, line__isnull=True)
                ).order_by("created_at", "id"),
                "notifications_url": reverse("admin:notifications_notification_changelist"),
                "order_number": backorder.line.order.number,
            }
        return super().history_view(request, object_id, {**extra, **(extra_context or {})})


@admin.register(EtaChange)
class EtaChangeAdmin(BigTableAdminMixin, inventory_admin.ReadOnlyAdminMixin, admin.ModelAdmin):
    """The ETA history, append-only: what notifications consume and auditors read."""

    list_display = ["created_at", "sku", "order_number", "old_eta", "new_eta", "source", "reason", "user"]
    list_filter = ["new_source", "created_at"]
    search_fields = ["backorder__product__sku", "backorder__line__order__number", "reason"]
    list_select_related = ["backorder__product", "backorder__line__order", "user"]
    fields = ["backorder", "old_eta", "new_eta", "old_source", "new_source", "reason", "user", "created_at"]
    readonly_fields = fields

    @admin.display(description="new source", ordering="new_source")
    def source(self, change: EtaChange) -> str:
        return source_label(change.new_source)

    @admin.display(description="SKU", ordering="backorder__product__sku")
    def sku(self, change: EtaChange) -> str:
        return change.backorder.product.sku

    @admin.display(description="order", ordering="backorder__line__order__number")
    def order_number(self, change: EtaChange) -> str:
        return admin_link(change.backorder, change.backorder.line.order.number)


@admin.register(BackorderPolicy)
class BackorderPolicyAdmin(admin.ModelAdmin):
    """The one policy row. Managers (change permission) edit it; the changelist opens it directly."""

    fieldsets = [
        ("Filling the queue", {"fields": ["fill_strategy", "handling_days"]}),
        ("Compliance", {"fields": ["compliance_profile", "rolling_backorder_days"]}),
        (
            "Customer notices",
            {
                "fields": [
                    "eta_change_threshold_days",
                    "eta_quiet_minutes",
                    "cancellation_offer_days",
                    "status_update_days",
                    "status_link_days",
                    "coupon_code",
                ]
            },
        ),
        ("Last change", {"fields": ["updated_at", "updated_by"]}),
    ]
    readonly_fields = ["updated_at", "updated_by"]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_object(self, request, object_id, from_field=None):
        """The policy row, created with the settings' defaults if it is missing (it always exists for managers)."""
        if str(object_id) == str(BackorderPolicy.ensure().pk):
            return super().get_object(request, object_id, from_field)
        return None

    def changelist_view(self, request, extra_context=None):
        policy = BackorderPolicy.ensure()
        return HttpResponseRedirect(reverse("admin:backorders_backorderpolicy_change", args=[policy.pk]))

    def save_model(self, request, obj, form, change):
        """Through policy_update: it records who changed it and re-pegs every waiting ETA when the fill
        strategy or the handling days change, in the same transaction."""
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE_FIELDS}
        if not changes:
            return
        try:
            policy_update(changes=changes, acting_user=request.user)
        except DomainError as exc:
            self.message_user(request, exc.detail, messages.ERROR)
            return
        if REPEG_FIELDS & set(changes):
            self.message_user(request, "The ETAs of every waiting line were re-pegged to the new policy.")


# The inventory and orders admins, extended with the workflows above.
for model, model_admin in (
    (Product, ProductAdmin),
    (StockLevel, StockLevelAdmin),
    (PurchaseOrder, PurchaseOrderAdmin),
    (SalesOrder, SalesOrderAdmin),
):
    admin.site.unregister(model)
    admin.site.register(model, model_admin)


# Compliance clock and timeline


def render_timeline(line_id: int) -> str:
    """The append-only compliance timeline of one order line, as a small table."""
    events = ComplianceEvent.objects.filter(line_id=line_id).order_by("created_at", "id")
    if not events:
        return "No compliance events yet (the daily scan starts a clock for every waiting line)."
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                event.on,
                event.get_kind_display(),
                event.get_channel_display(),
                event.ip_address or "",
                ", ".join(f"{k}: {v}" for k, v in event.details.items() if v not in (None, "")),
            )
            for event in events
        ),
    )
    return format_html(
        '<table class="compliance-timeline"><thead><tr><th>date</th><th>event</th><th>channel</th><th>IP</th>'
        "<th>details</th></tr></thead><tbody>{}</tbody></table>",
        rows,
    )


@admin.display(description="compliance timeline")
def _backorder_timeline(self, backorder: Backorder) -> str:
    return render_timeline(backorder.line_id)


BackorderAdmin.compliance_timeline = _backorder_timeline


class RefundOverdueFilter(admin.SimpleListFilter):
    title = "refund"
    parameter_name = "refund"

    def lookups(self, request, model_admin):
        return [("due", "Refund due"), ("overdue", "Refund overdue")]

    def queryset(self, request, queryset):
        if self.value() == "due":
            return queryset.filter(refund_due_by__isnull=False)
        if self.value() == "overdue":
            return queryset.filter(refund_overdue_q(as_of=timezone.localdate()))
        return queryset


class NoticeDueFilter(admin.SimpleListFilter):
    """Delay notices due by today and not sent yet (what the dashboard counts)."""

    title = "delay notice"
    parameter_name = "notice"

    def lookups(self, request, model_admin):
        return [("due", "Due, not sent yet")]

    def queryset(self, request, queryset):
        if self.value() == "due":
            return queryset.filter(notice_due_q(as_of=timezone.localdate(), policy=BackorderPolicy.current()))
        return queryset


class ConsentDeadlineFilter(admin.SimpleListFilter):
    title = "consent deadline"
    parameter_name = "deadline"

    def lookups(self, request, model_admin):
        return [("week", "In the next 7 days"), ("passed", "Passed without consent")]

    def queryset(self, request, queryset):
        today = timezone.localdate()
        if self.value() == "week":
            return queryset.filter(consent_deadline_q(as_of=today))
        if self.value() == "passed":
            return queryset.filter(state=ComplianceClock.State.OPEN, consent_deadline__lt=today).exclude(
                consent=ComplianceClock.Consent.EXPRESS
            )
        return queryset


class ProfileFilter(admin.SimpleListFilter):
    """The clock's compliance profile, from the policy's choices: listing the values found (Django's default for a
    field without choices) runs SELECT DISTINCT over every clock on each page."""

    title = "profile"
    parameter_name = "profile"

    def lookups(self, request, model_admin):
        return BackorderPolicy.ComplianceProfile.choices

    def queryset(self, request, queryset):
        return queryset.filter(profile=self.value()) if self.value() else queryset


@admin.register(ComplianceClock)
class ComplianceClockAdmin(BigTableAdminMixin, inventory_admin.ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "order_number",
        "sku",
        "customer_email",
        "profile",
        "state",
        "ship_by",
        "revised_date",
        "consent",
        "consent_deadline",
        "notices_sent",
        "refund_due_by",
    ]
    list_filter = [
        "state",
        NoticeDueFilter,
        ConsentDeadlineFilter,
        RefundOverdueFilter,
        "consent",
        ProfileFilter,
        "ship_by",
    ]
    search_fields = ["line__order__number", "line__product__sku", "line__order__customer__email"]
    list_select_related = ["line__order__customer", "line__product"]
    fields = [
        "order_number",
        "sku",
        "customer_email",
        "profile",
        "state",
        "ship_by",
        "revised_date",
        "notices_sent",
        "last_notice_on",
        "consent",
        "consent_deadline",
        "indefinite_consent",
        "cancelled_on",
        "refund_due_by",
        "refund_units",
        "timeline",
    ]
    readonly_fields = fields

    @admin.display(description="order", ordering="line__order__number")
    def order_number(self, clock: ComplianceClock) -> str:
        return clock.line.order.number

    @admin.display(description="SKU", ordering="line__product__sku")
    def sku(self, clock: ComplianceClock) -> str:
        return clock.line.product.sku

    @admin.display(description="customer")
    def customer_email(self, clock: ComplianceClock) -> str:
        return clock.line.order.customer.email

    @admin.display(description="timeline")
    def timeline(self, clock: ComplianceClock) -> str:
        return render_timeline(clock.line_id)


@admin.register(ComplianceEvent)
class ComplianceEventAdmin(BigTableAdminMixin, inventory_admin.ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = ["on", "kind", "order_number", "sku", "channel", "ip_address", "created_at"]
    list_filter = ["kind", "channel", "on"]
    search_fields = ["line__order__number", "line__product__sku", "line__order__customer__email"]
    list_select_related = ["line__order", "line__product"]

    @admin.display(description="order", ordering="line__order__number")
    def order_number(self, event: ComplianceEvent) -> str:
        return event.line.order.number

    @admin.display(description="SKU")
    def sku(self, event: ComplianceEvent) -> str:
        return event.line.product.sku
