"""CSV import and export (django-import-export) for products, stock counts and purchase orders.

Every import runs twice: a dry run that shows the preview (rolled back), then, once confirmed, for
real. Writes go through the services, never straight to the tables:
- products: new ones are created in batches (bulk_create_with_history: each still gets its "created" history
  record), changed ones go through product_update (ETAs re-peg), unchanged ones are skipped;
- stock counts: `counted` becomes on hand through stock_count_record, an adjustment with the reason
  "Stock count import" (stock_adjust_and_fill: the ledger row, then the queue fills);
- purchase orders: one row per line, grouped by number, each group through purchase_order_create.
A bad row is reported on its line with the reason, and the whole file is refused: nothing changes.
"""

from copy import copy
from datetime import date

from django.contrib.admin.models import ADDITION, CHANGE, LogEntry
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from import_export import fields, resources, widgets
from import_export.instance_loaders import ModelInstanceLoader
from import_export.results import Result, RowResult
from simple_history.utils import bulk_create_with_history

from inventory.exceptions import DomainError
from inventory.models import Product, PurchaseOrder, PurchaseOrderLine, StockLevel, Supplier, Warehouse

from .services.catalog import product_update
from .services.counts import STOCK_COUNT_REASON, stock_count_record
from .services.purchasing import PurchaseLineRequest, purchase_order_create

YES = {"1", "true", "yes", "y"}
NO = {"0", "false", "no", "n"}


class YesNoWidget(widgets.BooleanWidget):
    """yes/no (also true/false, 1/0) in any case; blank keeps the current value. Anything else is an error
    on the row, never a silent "no"."""

    def clean(self, value, row=None, **kwargs):
        text = str(value).strip().lower() if value is not None else ""
        if text in ("", "none", "null"):
            return None
        if text in YES:
            return True
        if text in NO:
            return False
        raise ValueError(f"Write yes or no, not {value!r}.")

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else ("yes" if value else "no")


class WholeNumberWidget(widgets.IntegerWidget):
    """A whole number of at least `minimum`; blank is None."""

    def __init__(self, minimum: int = 0, **kwargs) -> None:
        self.minimum = minimum
        super().__init__(**kwargs)

    def clean(self, value, row=None, **kwargs):
        if value is None or str(value).strip() == "":
            return None
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"Write a whole number, not {value!r}.") from None
        if number != int(number):
            raise ValueError(f"Write a whole number, not {value!r}.")
        if number < self.minimum:
            raise ValueError(f"Must be at least {self.minimum}.")
        return int(number)


class NamedForeignKeyWidget(widgets.ForeignKeyWidget):
    """A related row by a readable key (supplier name, warehouse code); an unknown one is a row error."""

    def __init__(self, model, field: str, noun: str) -> None:
        self.noun = noun
        self.found: dict[str, object] = {}  # per import (a resource copies its fields): one query per distinct key
        super().__init__(model, field)

    def clean(self, value, row=None, **kwargs):
        text = str(value).strip() if value is not None else ""
        if not text:
            return None
        if text not in self.found:
            try:
                self.found[text] = self.get_queryset(value, row, **kwargs).get(**{f"{self.field}__iexact": text})
            except self.model.DoesNotExist:
                self.found[text] = None
        if self.found[text] is None:
            raise ValueError(f"No {self.noun} {text!r}.")
        return self.found[text]


def _date(value) -> date | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise ValueError(f"Write the date as YYYY-MM-DD, not {value!r}.") from None


def _cell(row, column: str) -> str:
    value = row.get(column)
    return "" if value is None else str(value).strip()


def _domain_error(exc: DomainError, *, field: str) -> ValidationError:
    """A service's refusal, shown on the row's `field`."""
    return ValidationError({field: exc.detail})


class ServiceResource(resources.ModelResource):
    """Shared: transactions always (the preview is a rolled-back run), never write the model directly."""

    def import_data(self, dataset, **kwargs):
        # A row that fails when the import is confirmed rolls back every row (the preview had none).
        kwargs["rollback_on_validation_errors"] = True
        return super().import_data(dataset, **kwargs)

    @staticmethod
    def acting_user(kwargs):
        user = kwargs.get("user")
        return user if user is not None and user.is_authenticated else None


# Products


class PreviewResult(Result):
    """The library's result, keeping the row results (the preview's rows, with their diffs) of the first
    PREVIEW_ROWS rows only, so that a large file is imported in flat memory. The totals still count every row,
    and every invalid or failed row is kept with its line number (invalid_rows, error_rows)."""

    PREVIEW_ROWS = 1000

    def append_row_result(self, row_result: RowResult) -> None:
        if len(self.rows) < self.PREVIEW_ROWS:
            self.rows.append(row_result)

    def row_errors(self):
        # The library numbers these by position in `rows`; with rows left out, take the line from each error row.
        return [(row.number, row.errors) for row in self.error_rows]

    def rows_not_shown(self) -> int:
        valid = sum(self.totals[kind] for kind in RowResult.valid_import_types)
        return valid - len(self.valid_rows())


class BatchInstanceLoader(ModelInstanceLoader):
    """Finds each row's existing object by the (single) import id field, loading a batch of rows' objects in one
    query when the import reaches it: a query per batch_size rows, and one batch in memory at a time (the library's
    CachedInstanceLoader holds the whole file's objects). Rows are asked for in file order, once each."""

    def __init__(self, resource, dataset=None) -> None:
        super().__init__(resource, dataset)
        self.field = resource.fields[resource.get_import_id_fields()[0]]
        self.size = resource._meta.batch_size or 1000
        self.next_row = 0  # index in the dataset of the row asked for next
        self.loaded_to = 0  # rows before this index have been loaded
        self.keys: set = set()
        self.objects: dict = {}

    def get_instance(self, row):
        if self.next_row >= self.loaded_to:
            self.load(self.next_row)
        self.next_row += 1
        key = self.field.clean(row)
        if key in (None, ""):
            return None
        if key not in self.keys:  # not the row expected here (a hook skipped or repeated one): ask for it alone
            return super().get_instance(row)
        return self.objects.get(key)

    def load(self, start: int) -> None:
        rows = (
            dict(zip(self.dataset.headers, values, strict=True)) for values in self.dataset[start : start + self.size]
        )
        self.keys = {self.field.clean(row) for row in rows}
        self.keys.discard(None)
        self.keys.discard("")
        queryset = self.get_queryset().filter(**{f"{self.field.attribute}__in": self.keys})
        self.objects = {self.field.get_value(instance): instance for instance in queryset}
        self.loaded_to = start + self.size


class ProductResource(ServiceResource):
    """New products are created a batch at a time (bulk_create_with_history, so each still has its "created"
    history record, with the importing user); changed ones go one by one through product_update, which re-pegs
    ETAs; unchanged ones are skipped. A SKU may appear once per file.

    The result holds the first rows only (PreviewResult), so the admin's log entries (one per product created or
    changed) are written here, a batch at a time, when import_data is given admin_log=True (the admin's import
    then skips its own).
    """

    sku = fields.Field(attribute="sku", column_name="sku")
    name = fields.Field(attribute="name", column_name="name")
    # Blank keeps the current value (a new product gets the default), except lead time and supplier, where
    # blank means none (the export writes none as blank).
    backorders_allowed = fields.Field(
        attribute="backorders_allowed", column_name="backorders_allowed", widget=YesNoWidget(), saves_null_values=False
    )
    discontinued = fields.Field(
        attribute="discontinued", column_name="discontinued", widget=YesNoWidget(), saves_null_values=False
    )
    ftc_exempt = fields.Field(
        attribute="ftc_exempt", column_name="ftc_exempt", widget=YesNoWidget(), saves_null_values=False
    )
    lead_time_days = fields.Field(
        attribute="lead_time_days", column_name="lead_time_days", widget=WholeNumberWidget(), saves_null_values=True
    )
    supplier = fields.Field(
        attribute="supplier",
        column_name="supplier",
        widget=NamedForeignKeyWidget(Supplier, "name", "supplier named"),
        saves_null_values=True,
    )
    safety_stock = fields.Field(
        attribute="safety_stock", column_name="safety_stock", widget=WholeNumberWidget(), saves_null_values=False
    )
    reorder_point = fields.Field(
        attribute="reorder_point", column_name="reorder_point", widget=WholeNumberWidget(), saves_null_values=False
    )

    EDITABLE = (
        "name",
        "backorders_allowed",
        "discontinued",
        "ftc_exempt",
        "lead_time_days",
        "supplier",
        "safety_stock",
        "reorder_point",
    )
    CHANGE_REASON = "Product import"

    class Meta:
        model = Product
        name = "Products (SKU, name, ordering and replenishment settings)"
        import_id_fields = ["sku"]
        fields = [
            "sku",
            "name",
            "backorders_allowed",
            "discontinued",
            "ftc_exempt",
            "lead_time_days",
            "supplier",
            "safety_stock",
            "reorder_point",
        ]
        export_order = fields
        skip_unchanged = True
        report_skipped = True
        use_transactions = True
        clean_model_instances = True
        # New products are inserted batch_size at a time (see bulk_create); with use_bulk the library also drops
        # its savepoint per row, which is safe here: any error rolls the whole import back.
        use_bulk = True
        batch_size = 1000
        instance_loader_class = BatchInstanceLoader

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.dataset = None
        self.skus: set[str] = set()  # the SKUs of the rows so far
        self.first_lines: dict[str, int] | None = None  # SKU -> its first line, once a SKU comes twice
        self.history_user = None
        self.log_user = None  # who the admin log entries are for (admin_log=True)

    @classmethod
    def get_result_class(cls):
        return PreviewResult

    def get_queryset(self) -> QuerySet[Product]:
        return Product.objects.select_related("supplier")

    def import_data(self, dataset, dry_run=False, **kwargs):
        self.dataset, self.skus, self.first_lines = dataset, set(), None
        self.history_user = self.acting_user(kwargs)
        self.log_user = self.history_user if kwargs.get("admin_log") and not dry_run else None
        # The row-by-row diff (a copy of each product, its fields rendered twice, an HTML diff) is what the preview
        # shows; the confirmed run only reports counts, so it skips it. Unchanged rows are still skipped (skip_row
        # compares with what was loaded, not with the diff). _meta is the class's: change a copy.
        self._meta = copy(type(self)._meta)
        self._meta.skip_diff = not dry_run
        return super().import_data(dataset, dry_run=dry_run, **kwargs)

    @staticmethod
    def stored_value(product: Product, name: str):
        return getattr(product, "supplier_id" if name == "supplier" else name)

    def after_init_instance(self, instance, new, row, **kwargs):
        # What is stored, to tell what the row changes (skip_row, save_instance) without reading the row again.
        instance.import_stored = None if new else {name: self.stored_value(instance, name) for name in self.EDITABLE}

    def import_instance(self, instance, row, **kwargs):
        sku = _cell(row, "sku")
        if not sku:
            raise ValidationError({"sku": "Every row needs a SKU."})
        # Once per file: a second row would be checked against the product as it was before the first one.
        again = sku in self.skus
        self.skus.add(sku)
        errors: dict = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if again:
            errors.setdefault("sku", []).append(f"{sku} is already on line {self.first_line(sku)} of this file.")
        if errors:
            raise ValidationError(errors)

    def first_line(self, sku: str) -> int:
        """Where `sku` first comes in the file (read once, at the first repeated SKU: most files have none)."""
        if self.first_lines is None:
            self.first_lines = {}
            for number, values in enumerate(self.dataset, 1):
                self.first_lines.setdefault(_cell(dict(zip(self.dataset.headers, values, strict=True)), "sku"), number)
        return self.first_lines[sku]

    def changes(self, instance: Product) -> dict[str, object]:
        stored = instance.import_stored or {}
        return {
            name: getattr(instance, name)
            for name in self.EDITABLE
            if stored.get(name) != self.stored_value(instance, name)
        }

    def skip_row(self, instance, original, row, import_validation_errors=None):
        return not import_validation_errors and instance.import_stored is not None and not self.changes(instance)

    def validate_instance(self, instance, import_validation_errors=None, validate_unique=True):
        """The model's checks (lengths, ranges), less two that would query per row and are already done: the
        SKU is unique (the loader found no product with it, and the file has it once) and the supplier exists
        (the widget found it)."""
        errors = dict(import_validation_errors or {})
        try:
            instance.full_clean(exclude=[*errors, "supplier"], validate_unique=False)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        if errors:
            raise ValidationError(errors)

    def save_instance(self, instance, is_create, row, **kwargs):
        if is_create:
            self.create_instances.append(instance)  # inserted with the rest of its batch (bulk_create)
            return
        changes = self.changes(instance)
        if changes:
            instance._history_user = self.history_user
            instance._change_reason = self.CHANGE_REASON
            product_update(product=instance, changes=changes)
            self.update_instances.append(instance)  # saved; logged with the rest of its batch (bulk_update)

    def bulk_create(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        """The library's bulk_create, with a history record per product, as a save() would make."""
        if self.create_instances and (using_transactions or not dry_run):
            try:
                bulk_create_with_history(
                    self.create_instances,
                    Product,
                    batch_size=batch_size,
                    default_user=self.history_user,
                    default_change_reason=self.CHANGE_REASON,
                )
                self.log_admin_actions(self.create_instances, ADDITION, RowResult.IMPORT_TYPE_NEW)
            except Exception as exc:
                self.handle_import_error(result, exc, raise_errors)
            finally:
                self.create_instances.clear()

    def bulk_update(self, using_transactions, dry_run, raise_errors, batch_size=None, result=None):
        """Changed products were saved one by one through product_update (save_instance): only log them."""
        try:
            self.log_admin_actions(self.update_instances, CHANGE, RowResult.IMPORT_TYPE_UPDATE)
        except Exception as exc:
            self.handle_import_error(result, exc, raise_errors)
        finally:
            self.update_instances.clear()

    def log_admin_actions(self, products: list[Product], action_flag: int, import_type: str) -> None:
        """The admin log entries django-import-export's admin would write for these rows (same message)."""
        if self.log_user is not None and products:
            LogEntry.objects.log_actions(
                self.log_user.pk, products, action_flag, change_message=f"{import_type} through import_export"
            )


# Stock counts


class StockCountResource(ServiceResource):
    """A count sheet: export it, fill in `counted`, import it. Blank or unchanged counts are skipped."""

    sku = fields.Field(attribute="product__sku", column_name="sku", readonly=True)
    product = fields.Field(attribute="product__name", column_name="product", readonly=True)
    warehouse = fields.Field(attribute="warehouse__code", column_name="warehouse", readonly=True)
    on_hand = fields.Field(attribute="on_hand", column_name="on_hand", readonly=True)
    allocated = fields.Field(attribute="allocated", column_name="allocated", readonly=True)
    # Blank in the count sheet; in the import preview, what was counted and the adjustment it makes.
    counted = fields.Field(attribute="counted", column_name="counted", readonly=True)
    adjustment = fields.Field(attribute="adjustment", column_name="adjustment", readonly=True)

    REQUIRED = ("sku", "warehouse", "counted")

    class Meta:
        model = StockLevel
        name = "Stock counts (sku, warehouse, counted)"
        fields = ["sku", "product", "warehouse", "on_hand", "allocated", "counted", "adjustment"]
        export_order = fields
        report_skipped = True
        use_transactions = True
        clean_model_instances = False
        skip_unchanged = False
        # The only write in a row is stock_count_record, atomic (a savepoint) itself: use_bulk drops the library's
        # savepoint around every row (there is nothing for its batches to save). Each row still reads its stock
        # level when it comes (get_instance): an earlier row's count may have filled lines and moved `allocated`.
        use_bulk = True

    def get_queryset(self) -> QuerySet[StockLevel]:
        return StockLevel.objects.select_related("product", "warehouse").order_by("product__sku", "warehouse__priority")

    def get_import_id_fields(self):
        return []

    def get_user_visible_fields(self):
        return [self.fields[name] for name in self.REQUIRED]

    def before_import(self, dataset, **kwargs):
        missing = [column for column in self.REQUIRED if column not in (dataset.headers or [])]
        if missing:
            raise ValueError(
                f"The file needs the columns sku, warehouse and counted; missing: {', '.join(missing)}. "
                "Export the stock levels for a count sheet with the right columns."
            )

    def get_instance(self, instance_loader, row):
        sku, code = _cell(row, "sku"), _cell(row, "warehouse")
        if not sku or not code:
            return None
        return self.get_queryset().filter(product__sku=sku, warehouse__code__iexact=code).first()

    def init_instance(self, row=None):
        return StockLevel(on_hand=0, allocated=0)

    def import_instance(self, instance, row, **kwargs):
        errors: dict[str, str] = {}
        sku, code = _cell(row, "sku"), _cell(row, "warehouse")
        product = instance.product if instance.pk else Product.objects.filter(sku=sku).first()
        warehouse = instance.warehouse if instance.pk else Warehouse.objects.filter(code__iexact=code).first()
        if product is None:
            errors["sku"] = f"No product with SKU {sku!r}." if sku else "Every row needs a SKU."
        if warehouse is None:
            errors["warehouse"] = f"No warehouse with code {code!r}." if code else "Every row needs a warehouse code."
        try:
            counted = WholeNumberWidget(minimum=0).clean(row.get("counted"))
        except ValueError as exc:
            errors["counted"] = str(exc)
            counted = None
        if counted is not None and counted < instance.allocated:
            errors["counted"] = (
                f"{counted} counted, but {instance.allocated} of {sku} at {code} are allocated to orders: on hand "
                "cannot go below that. Recount, or cancel or ship those orders first."
            )
        if errors:
            raise ValidationError(errors)
        if not instance.pk:
            instance.product, instance.warehouse = product, warehouse
        instance.counted = counted
        instance.adjustment = None if counted is None else f"{counted - instance.on_hand:+d}"

    def skip_row(self, instance, original, row, import_validation_errors=None):
        if import_validation_errors:
            return False
        counted = getattr(instance, "counted", None)
        return counted is None or counted == instance.on_hand

    def save_instance(self, instance, is_create, row, **kwargs):
        try:
            stock_count_record(
                product=instance.product,
                warehouse=instance.warehouse,
                counted=instance.counted,
                reason=STOCK_COUNT_REASON,
                acting_user=self.acting_user(kwargs),
            )
        except DomainError as exc:
            raise _domain_error(exc, field="counted") from exc


# Purchase orders


class PurchaseOrderResource(ServiceResource):
    """One row per purchase order line; rows with the same number make one purchase order.

    Import creates new purchase orders (draft or ordered) through purchase_order_create; changing an existing
    one is done on its page or over the API.
    """

    number = fields.Field(attribute="purchase_order__number", column_name="number", readonly=True)
    supplier = fields.Field(attribute="purchase_order__supplier__name", column_name="supplier", readonly=True)
    warehouse = fields.Field(attribute="purchase_order__warehouse__code", column_name="warehouse", readonly=True)
    expected_date = fields.Field(
        attribute="purchase_order__expected_date",
        column_name="expected_date",
        readonly=True,
        widget=widgets.DateWidget(),
    )
    status = fields.Field(attribute="purchase_order__status", column_name="status", readonly=True)
    sku = fields.Field(attribute="product__sku", column_name="sku", readonly=True)
    quantity = fields.Field(attribute="quantity", column_name="quantity", readonly=True)
    received = fields.Field(attribute="received", column_name="received", readonly=True)
    line_expected_date = fields.Field(
        attribute="expected_date", column_name="line_expected_date", readonly=True, widget=widgets.DateWidget()
    )

    REQUIRED = ("number", "warehouse", "expected_date", "sku", "quantity")
    OPTIONAL = ("supplier", "status", "line_expected_date")
    PO_COLUMNS = ("supplier", "warehouse", "expected_date", "status")

    class Meta:
        model = PurchaseOrderLine
        name = "Purchase orders (one row per line; rows with the same number make one purchase order)"
        fields = [
            "number",
            "supplier",
            "warehouse",
            "expected_date",
            "status",
            "sku",
            "quantity",
            "received",
            "line_expected_date",
        ]
        export_order = fields
        use_transactions = True
        clean_model_instances = False
        # Rows only read (the purchase orders are created in after_import), so the library's savepoint per row
        # protects nothing; use_bulk drops it (there is nothing for its batches to save).
        use_bulk = True

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.orders: dict[str, dict] = {}
        # Looked up once per import, not once per row: the file's products and existing numbers (one query each,
        # in before_import), warehouses and suppliers by the text in the file (a query per distinct text).
        self.products: dict[str, Product] = {}
        self.existing_numbers: set[str] = set()
        self.warehouses: dict[str, Warehouse | None] = {}
        self.suppliers: dict[str, Supplier | None] = {}

    def get_import_id_fields(self):
        return []

    def get_user_visible_fields(self):
        return [self.fields[name] for name in (*self.REQUIRED, *self.OPTIONAL)]

    def filter_export(self, queryset, **kwargs):
        """The purchase order admin exports its (filtered or selected) purchase orders: one row per line."""
        if queryset.model is PurchaseOrder:
            queryset = PurchaseOrderLine.objects.filter(purchase_order__in=queryset.order_by().values("pk"))
        return queryset.select_related("purchase_order__supplier", "purchase_order__warehouse", "product").order_by(
            "purchase_order__number", "pk"
        )

    def before_import(self, dataset, **kwargs):
        missing = [column for column in self.REQUIRED if column not in (dataset.headers or [])]
        if missing:
            raise ValueError(
                f"The file needs the columns {', '.join(self.REQUIRED)}; missing: {', '.join(missing)}. "
                "Export purchase orders for a file with the right columns."
            )
        self.orders = {}
        rows = [dict(zip(dataset.headers, values, strict=True)) for values in dataset]
        skus = {_cell(row, "sku") for row in rows} - {""}
        numbers = {_cell(row, "number") for row in rows} - {""}
        self.products = {product.sku: product for product in Product.objects.filter(sku__in=skus)}
        self.existing_numbers = set(PurchaseOrder.objects.filter(number__in=numbers).values_list("number", flat=True))
        self.warehouses, self.suppliers = {}, {}

    def warehouse_by_code(self, code: str) -> Warehouse | None:
        if code not in self.warehouses:
            self.warehouses[code] = Warehouse.objects.filter(code__iexact=code).first()
        return self.warehouses[code]

    def supplier_by_name(self, name: str) -> Supplier | None:
        if name not in self.suppliers:
            self.suppliers[name] = Supplier.objects.filter(name__iexact=name).first()
        return self.suppliers[name]

    def get_instance(self, instance_loader, row):
        return None  # every row is a new line of a new purchase order

    def import_instance(self, instance, row, **kwargs):
        errors: dict[str, str] = {}
        number = _cell(row, "number")
        if not number:
            errors["number"] = "Every row needs the purchase order number."
        elif number in self.existing_numbers:
            errors["number"] = (
                f"Purchase order {number} already exists. Import creates new purchase orders; change existing ones "
                "on their page or over the API."
            )
        code = _cell(row, "warehouse")
        warehouse = self.warehouse_by_code(code) if code else None
        if warehouse is None:
            errors["warehouse"] = f"No warehouse with code {code!r}." if code else "Every row needs a warehouse code."
        supplier = None
        if _cell(row, "supplier"):
            supplier = self.supplier_by_name(_cell(row, "supplier"))
            if supplier is None:
                errors["supplier"] = f"No supplier named {_cell(row, 'supplier')!r}."
        status = _cell(row, "status").lower() or PurchaseOrder.Status.ORDERED
        if status not in (PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.ORDERED):
            errors["status"] = f"A new purchase order is draft or ordered, not {status!r}."
        dates: dict[str, date | None] = {}
        for column in ("expected_date", "line_expected_date"):
            try:
                dates[column] = _date(row.get(column))
            except ValueError as exc:
                errors[column] = str(exc)
        if "expected_date" not in errors and dates.get("expected_date") is None:
            errors["expected_date"] = "Every row needs the expected date (YYYY-MM-DD)."
        sku = _cell(row, "sku")
        product = self.products.get(sku) if sku else None
        if product is None:
            errors["sku"] = f"No product with SKU {sku!r}." if sku else "Every row needs a SKU."
        try:
            quantity = WholeNumberWidget(minimum=1).clean(row.get("quantity"))
            if quantity is None:
                errors["quantity"] = "Every row needs a quantity of at least 1."
        except ValueError as exc:
            errors["quantity"] = str(exc)
            quantity = None

        order = self.orders.get(number)
        header = {
            "supplier": supplier,
            "warehouse": warehouse,
            "expected_date": dates.get("expected_date"),
            "status": status,
        }
        if number and order is not None:
            for column in self.PO_COLUMNS:
                if column not in errors and order["header"][column] != header[column]:
                    errors[column] = (
                        f"Differs from line {order['first_row']} of purchase order {number}; every row of one "
                        "purchase order has the same supplier, warehouse, expected date and status."
                    )
            if sku and sku in order["skus"]:
                errors["sku"] = f"{sku} is already on purchase order {number} (line {order['skus'][sku]})."
        if errors:
            raise ValidationError(errors)
        if order is None:
            order = self.orders[number] = {
                "header": header,
                "first_row": kwargs.get("row_number"),
                "lines": [],
                "skus": {},
            }
        order["skus"][sku] = kwargs.get("row_number")
        order["lines"].append(
            PurchaseLineRequest(sku=sku, quantity=quantity, expected_date=dates["line_expected_date"])
        )
        # For the preview only: the line as it will be created (saved by purchase_order_create after the last row).
        instance.purchase_order = PurchaseOrder(
            number=number, supplier=supplier, warehouse=warehouse, expected_date=header["expected_date"], status=status
        )
        instance.product, instance.quantity, instance.received = product, quantity, 0
        instance.expected_date = dates["line_expected_date"]

    def save_instance(self, instance, is_create, row, **kwargs):
        """Nothing yet: each purchase order is created whole once all its rows are read (after_import)."""

    def after_import(self, dataset, result, **kwargs):
        if result.has_errors() or result.has_validation_errors():
            return
        for number, order in self.orders.items():
            header = order["header"]
            try:
                purchase_order_create(
                    warehouse=header["warehouse"],
                    expected_date=header["expected_date"],
                    lines=order["lines"],
                    supplier=header["supplier"],
                    number=number,
                    status=header["status"],
                    acting_user=self.acting_user(kwargs),
                )
            except DomainError as exc:
                raise ValueError(f"Purchase order {number} (from line {order['first_row']}): {exc.detail}") from exc
