"""CSV imports at scale: the product import writes new products a batch at a time, so its queries do not grow with
the rows; what it reports (per-row errors with line numbers, the preview, history) is as for a small file."""

from datetime import timedelta

import pytest
import tablib
from django.contrib.admin.models import ADDITION, LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from backorders.resources import PreviewResult, ProductResource, PurchaseOrderResource, StockCountResource
from inventory.models import Product, PurchaseOrder, Supplier

from ..inventory.factories import ProductFactory, WarehouseFactory, stock
from .test_admin_import_export import confirm, row_errors, upload

pytestmark = pytest.mark.django_db

HEADERS = ProductResource.Meta.fields


def products_file(count: int, *, start: int = 0, safety_stock: str = "0") -> tablib.Dataset:
    dataset = tablib.Dataset(headers=HEADERS)
    for i in range(start, start + count):
        dataset.append([f"IMP-{i:05d}", f"Imported {i}", "yes", "no", "no", "7", "Cascade", safety_stock, "0"])
    return dataset


def queries_of_import(resource, dataset, **kwargs) -> int:
    with CaptureQueriesContext(connection) as queries:
        result = resource.import_data(dataset, **kwargs)
    assert not result.has_errors() and not result.has_validation_errors()
    return len(queries)


class SmallBatchProductResource(ProductResource):
    class Meta:
        batch_size = 10


@pytest.fixture
def cascade():
    return Supplier.objects.create(name="Cascade", lead_time_days=14)


def test_a_product_import_costs_the_same_queries_for_10_rows_as_for_100(cascade):
    ten = queries_of_import(ProductResource(), products_file(10))
    hundred = queries_of_import(ProductResource(), products_file(100, start=10))

    assert ten == hundred
    assert Product.objects.filter(sku__startswith="IMP-").count() == 110


def test_past_a_batch_the_queries_grow_by_batches_not_rows(cascade):
    twenty = queries_of_import(SmallBatchProductResource(), products_file(20))
    fifty = queries_of_import(SmallBatchProductResource(), products_file(50, start=20))

    # Each further batch of 10: its rows' products looked up, then in a savepoint the new products inserted and
    # their history records inserted.
    assert fifty - twenty == 3 * 5
    assert Product.objects.filter(sku__startswith="IMP-").count() == 70


def test_an_unchanged_file_is_skipped_in_the_same_queries_for_10_rows_as_for_100(cascade):
    ProductResource().import_data(products_file(110))

    ten = queries_of_import(ProductResource(), products_file(10))
    hundred = queries_of_import(ProductResource(), products_file(100, start=10))

    assert ten == hundred


def test_each_changed_row_goes_through_product_update_and_keeps_its_history(cascade, admin_user):
    ProductResource().import_data(products_file(3))

    result = ProductResource().import_data(products_file(3, safety_stock="4"), user=admin_user)

    assert [row.import_type for row in result.rows] == ["update"] * 3
    assert set(Product.objects.filter(sku__startswith="IMP-").values_list("safety_stock", flat=True)) == {4}
    record = Product.history.filter(sku="IMP-00001").latest("history_date")
    assert (record.history_type, record.safety_stock, record.history_user, record.history_change_reason) == (
        "~",
        4,
        admin_user,
        "Product import",
    )


def test_products_created_in_bulk_each_get_a_history_record_with_who_imported_them(cascade, admin_user):
    result = SmallBatchProductResource().import_data(products_file(25), user=admin_user)

    assert result.totals["new"] == 25
    records = Product.history.filter(sku__startswith="IMP-")
    assert records.count() == 25
    assert set(records.values_list("history_type", "history_user", "history_change_reason")) == {
        ("+", admin_user.pk, "Product import")
    }
    product = Product.objects.get(sku="IMP-00024")
    assert (product.name, product.supplier, product.lead_time_days) == ("Imported 24", cascade, 7)
    assert records.get(sku="IMP-00024").id == product.pk


def test_a_bad_row_past_the_first_batch_is_reported_on_its_line_and_nothing_is_imported(cascade):
    dataset = products_file(25)
    dataset.append(["IMP-00099", "Tent", "maybe", "no", "no", "7", "Cascade", "0", "0"])
    dataset.append(["IMP-00003", "Again", "yes", "no", "no", "7", "Cascade", "0", "0"])
    dataset.append(["IMP-00100", "x" * 201, "yes", "no", "no", "-1", "Nobody", "0", "0"])

    result = SmallBatchProductResource().import_data(dataset, dry_run=False)

    errors = {row.number: row.error_dict for row in result.invalid_rows}
    assert set(errors) == {26, 27, 28}
    assert errors[26] == {"backorders_allowed": ["Write yes or no, not 'maybe'."]}
    assert errors[27] == {"sku": ["IMP-00003 is already on line 4 of this file."]}
    assert errors[28]["lead_time_days"] == ["Must be at least 0."]
    assert errors[28]["supplier"] == ["No supplier named 'Nobody'."]
    assert errors[28]["name"] == ["Ensure this value has at most 200 characters (it has 201)."]
    assert not Product.objects.filter(sku__startswith="IMP-").exists()
    assert not Product.history.filter(sku__startswith="IMP-").exists()


def test_the_dry_run_previews_every_row_and_writes_nothing(cascade):
    ProductFactory(sku="IMP-00000", name="Old name", lead_time_days=7, supplier=cascade)

    result = SmallBatchProductResource().import_data(products_file(15), dry_run=True)

    assert [row.import_type for row in result.rows] == ["update"] + ["new"] * 14
    assert "Imported 0" in "".join(result.rows[0].diff) and "Old name" in "".join(result.rows[0].diff)
    assert "IMP-00014" in "".join(result.rows[14].diff)
    assert list(Product.objects.values_list("sku", "name")) == [("IMP-00000", "Old name")]
    assert Product.history.count() == 1


def test_the_admin_import_logs_each_new_product_it_created(admin_client, cascade):
    text = "sku,name,supplier\nIMP-1,Mug,Cascade\nIMP-2,Lamp,cascade\n"

    response = confirm(admin_client, "product", upload(admin_client, "product", text))

    assert response.status_code == 302
    products = dict(Product.objects.values_list("sku", "pk"))
    logged = set(LogEntry.objects.filter(action_flag=ADDITION).values_list("object_id", "object_repr"))
    assert logged == {(str(products["IMP-1"]), "IMP-1 — Mug"), (str(products["IMP-2"]), "IMP-2 — Lamp")}
    assert set(Product.history.values_list("sku", "history_user__username")) == {("IMP-1", "admin"), ("IMP-2", "admin")}


def test_a_duplicated_sku_in_the_admin_preview_is_shown_on_its_line(admin_client, cascade):
    preview = upload(admin_client, "product", "sku,name\nIMP-1,Mug\nIMP-1,Mug again\n")

    assert row_errors(preview) == {2: {"sku": ["IMP-1 is already on line 1 of this file."]}}
    assert preview.context.get("confirm_form") is None
    assert not Product.objects.exists()


def test_a_purchase_order_import_looks_up_products_and_numbers_once_not_per_row(cascade):
    main = WarehouseFactory(code="MAIN", priority=1)
    for i in range(20):
        ProductFactory(sku=f"IMP-{i:05d}")
    day = (timezone.localdate() + timedelta(days=5)).isoformat()

    def po_file(number: str, lines: int) -> tablib.Dataset:
        dataset = tablib.Dataset(headers=["number", "supplier", "warehouse", "expected_date", "sku", "quantity"])
        for i in range(lines):
            dataset.append([number, "Cascade", "main", day, f"IMP-{i:05d}", "2"])
        return dataset

    two = queries_of_import(PurchaseOrderResource(), po_file("PO-2", 2))
    twenty = queries_of_import(PurchaseOrderResource(), po_file("PO-20", 20))

    assert two == twenty
    assert PurchaseOrder.objects.get(number="PO-20").lines.count() == 20
    assert PurchaseOrder.objects.get(number="PO-20").warehouse == main


def test_a_count_sheet_row_reads_only_its_stock_level_unless_the_count_changes_it(admin_user):
    main = WarehouseFactory(code="MAIN", priority=1)
    for i in range(12):
        stock(ProductFactory(sku=f"IMP-{i:05d}"), main, 5)

    def sheet(first: int, count: int) -> tablib.Dataset:
        dataset = tablib.Dataset(headers=["sku", "warehouse", "counted"])
        for i in range(first, first + count):
            dataset.append([f"IMP-{i:05d}", "MAIN", "5"])
        return dataset

    two = queries_of_import(StockCountResource(), sheet(0, 2), user=admin_user)
    twelve = queries_of_import(StockCountResource(), sheet(0, 12), user=admin_user)

    assert twelve - two == 10  # one query a row: its stock level, as it stands after the rows before it


def test_a_large_file_previews_its_first_rows_and_counts_the_rest(admin_client, cascade, monkeypatch):
    monkeypatch.setattr(PreviewResult, "PREVIEW_ROWS", 3)
    ProductFactory(sku="IMP-00004", name="Imported 4", lead_time_days=7, supplier=cascade)
    ProductFactory(sku="IMP-00005", name="Old name", lead_time_days=7, supplier=cascade)
    text = "sku,name,lead_time_days,supplier\n" + "".join(f"IMP-{i:05d},Imported {i},7,Cascade\n" for i in range(8))

    preview = upload(admin_client, "product", text)

    result = preview.context["result"]
    assert (len(result.rows), result.rows_not_shown(), dict(result.totals)) == (
        3,
        5,
        {"new": 6, "update": 1, "delete": 0, "skip": 1, "error": 0, "invalid": 0},
    )
    content = preview.content.decode()
    assert "The first 3 rows are shown; 5 more are fine too. The whole file: 6 new, 1 to update, 1 unchanged." in (
        " ".join(content.split())
    )
    response = confirm(admin_client, "product", preview)

    assert response.status_code == 302
    assert Product.objects.filter(sku__startswith="IMP-").count() == 8
    logged = dict(LogEntry.objects.values_list("object_repr", "change_message"))
    assert len(logged) == 7  # every product created or changed, not only the rows shown
    assert logged["IMP-00005 — Imported 5"] == "update through import_export"
    assert logged["IMP-00007 — Imported 7"] == "new through import_export"
