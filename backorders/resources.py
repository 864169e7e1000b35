"""CSV import and export (django-import-export) for products, stock counts and purchase orders.

Every import runs twice: a dry run that shows the preview (rolled back), then, once confirmed, for
real. Writes go through the services, never straight to the tables:
- products: new ones are created, changed ones go through product_update (ETAs re-peg);
- stock counts: `counted` becomes on hand through stock_count_record, an adjustment with the reason
  "Stock count import" (stock_adjust_and_fill: the ledger row, then the queue fills);
- purchase orders: one row per line, grouped by number, each group through purchase_order_create.
A bad row is reported on its line with the reason, and the whole file is refused: nothing changes.
"""

from datetime import date

from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from import_export import fields, resources, widgets

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
        super().__init__(model, field)

    def clean(self, value, row=None, **kwargs):
        text = str(value).strip() if value is not None else ""
        if not text:
            return None
        try:
            return self.get_queryset(value, row, **kwargs).get(**{f"{self.field}__iexact": text})
        except self.model.DoesNotExist:
            raise ValueError(f"No {self.noun} {text!r}.") from None


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


class ProductResource(ServiceResource):
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

    def get_queryset(self) -> QuerySet[Product]:
        return Product.objects.select_related("supplier")

    def import_instance(self, instance, row, **kwargs):
        if not _cell(row, "sku"):
            raise ValidationError({"sku": "Every row needs a SKU."})
        super().import_instance(instance, row, **kwargs)

    def save_instance(self, instance, is_create, row, **kwargs):
        if is_create:
            instance.save()
            return
        stored = Product.objects.get(pk=instance.pk)
        changes = {
            name: getattr(instance, name)
            for name in self.EDITABLE
            if getattr(stored, "supplier_id" if name == "supplier" else name)
            != getattr(instance, "supplier_id" if name == "supplier" else name)
        }
        if changes:
            product_update(product=instance, changes=changes)


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

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.orders: dict[str, dict] = {}

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

    def get_instance(self, instance_loader, row):
        return None  # every row is a new line of a new purchase order

    def import_instance(self, instance, row, **kwargs):
        errors: dict[str, str] = {}
        number = _cell(row, "number")
        if not number:
            errors["number"] = "Every row needs the purchase order number."
        elif PurchaseOrder.objects.filter(number=number).exists():
            errors["number"] = (
                f"Purchase order {number} already exists. Import creates new purchase orders; change existing ones "
                "on their page or over the API."
            )
        code = _cell(row, "warehouse")
        warehouse = Warehouse.objects.filter(code__iexact=code).first() if code else None
        if warehouse is None:
            errors["warehouse"] = f"No warehouse with code {code!r}." if code else "Every row needs a warehouse code."
        supplier = None
        if _cell(row, "supplier"):
            supplier = Supplier.objects.filter(name__iexact=_cell(row, "supplier")).first()
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
        product = Product.objects.filter(sku=sku).first() if sku else None
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
