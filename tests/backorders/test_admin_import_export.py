"""CSV import and export in the admin (django-import-export): products, stock counts and purchase orders.

Every import shows a preview first (a rolled-back run) and changes nothing until confirmed; a file with a bad
row shows the problem on its line and cannot be confirmed; the writes go through the services.
"""

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from backorders.models import Backorder
from inventory.models import Product, PurchaseOrder, StockLevel, StockMovement, Supplier

from ..inventory.factories import ProductFactory, WarehouseFactory, purchase_order, stock
from .factories import place
from .test_admin import messages_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def main():
    return WarehouseFactory(code="MAIN", priority=1)


def upload(client, model: str, text: str):
    """Step 1: upload a CSV; returns the preview page."""
    return client.post(
        reverse(f"admin:inventory_{model}_import"),
        {"format": "0", "resource": "0", "import_file": SimpleUploadedFile("file.csv", text.encode(), "text/csv")},
    )


def confirm(client, model: str, preview):
    """Step 2: confirm the previewed import."""
    form = preview.context["confirm_form"]
    return client.post(reverse(f"admin:inventory_{model}_process_import"), dict(form.initial))


def export(client, model: str, query: str = "") -> list[dict[str, str]]:
    response = client.post(
        reverse(f"admin:inventory_{model}_export") + query, {"format": "0", "resource": "0", "export_items": []}
    )
    if response.status_code != 200 or "attachment" not in response.get("Content-Disposition", ""):
        # v4's export form lists the fields to include: send them all.
        form = response.context["form"]
        data = {"format": "0", "resource": "0"}
        data.update({name: "on" for name in form.fields if "_" in name and name not in ("export_items",)})
        response = client.post(reverse(f"admin:inventory_{model}_export") + query, data)
    assert "attachment" in response["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def row_errors(preview) -> dict[int, dict[str, list[str]]]:
    return {row.number: row.error_dict for row in preview.context["result"].invalid_rows}


# Products


def test_product_import_previews_then_creates_and_updates_through_the_services(admin_client, main):
    Supplier.objects.create(name="Cascade Gear Co.", lead_time_days=14)
    ProductFactory(sku="MUG", name="Mug", lead_time_days=10)
    backorder = Backorder.objects.get(line__order=place(("MUG", 1)))
    eta_before = backorder.eta
    text = (
        "sku,name,backorders_allowed,discontinued,lead_time_days,supplier,safety_stock,reorder_point\n"
        "MUG,Camp Mug,yes,no,20,,2,5\n"
        "LAMP,Headlamp,no,no,,Cascade Gear Co.,,\n"
    )

    preview = upload(admin_client, "product", text)

    assert preview.status_code == 200 and preview.context.get("confirm_form") is not None
    assert Product.objects.get(sku="MUG").name == "Mug" and not Product.objects.filter(sku="LAMP").exists()
    response = confirm(admin_client, "product", preview)

    assert response.status_code == 302
    mug, lamp = Product.objects.get(sku="MUG"), Product.objects.get(sku="LAMP")
    assert (mug.name, mug.lead_time_days, mug.reorder_point, mug.safety_stock) == ("Camp Mug", 20, 5, 2)
    assert (lamp.backorders_allowed, lamp.supplier.name, lamp.lead_time_days) == (False, "Cascade Gear Co.", None)
    backorder.refresh_from_db()
    assert backorder.eta == eta_before + timedelta(days=10)  # the lead time change re-pegged the waiting line
    assert "Import finished" in messages_of(response)[-1]


def test_a_bad_product_row_is_shown_on_its_line_and_nothing_is_imported(admin_client):
    ProductFactory(sku="MUG", name="Mug")
    text = (
        "sku,name,backorders_allowed,lead_time_days,supplier\n"
        "MUG,Renamed mug,yes,10,\n"
        "TENT,Tent,maybe,ten,Nobody Ltd\n"
        ",Nameless,yes,,\n"
    )

    preview = upload(admin_client, "product", text)

    assert preview.context.get("confirm_form") is None  # cannot be confirmed
    errors = row_errors(preview)
    assert set(errors) == {2, 3}
    assert errors[2]["backorders_allowed"] == ["Write yes or no, not 'maybe'."]
    assert errors[2]["lead_time_days"] == ["Write a whole number, not 'ten'."]
    assert errors[2]["supplier"] == ["No supplier named 'Nobody Ltd'."]
    assert errors[3]["sku"] == ["Every row needs a SKU."]
    assert "Some rows have problems: nothing was imported" in preview.content.decode()
    assert Product.objects.get(sku="MUG").name == "Mug" and Product.objects.count() == 1


def test_product_export_round_trips(admin_client):
    ProductFactory(sku="MUG", name="Mug", lead_time_days=None, discontinued=True)

    rows = export(admin_client, "product")

    assert rows == [
        {
            "sku": "MUG",
            "name": "Mug",
            "backorders_allowed": "yes",
            "discontinued": "yes",
            "ftc_exempt": "no",
            "lead_time_days": "",
            "supplier": "",
            "safety_stock": "0",
            "reorder_point": "0",
        }
    ]


# Stock counts


def test_stock_count_sheet_exports_then_imports_as_adjustments_that_fill_the_queue(
    admin_client, main, assert_invariants
):
    east = WarehouseFactory(code="EAST", priority=2)
    stock(ProductFactory(sku="MUG"), main, 5)
    stock(ProductFactory(sku="LAMP"), east, 2)
    ProductFactory(sku="TENT")
    waiting = place(("TENT", 3))

    sheet = export(admin_client, "stocklevel")
    assert [(r["sku"], r["warehouse"], r["on_hand"], r["counted"]) for r in sheet] == [
        ("LAMP", "EAST", "2", ""),
        ("MUG", "MAIN", "5", ""),
    ]
    text = "sku,warehouse,counted\nMUG,MAIN,3\nLAMP,EAST,\nTENT,MAIN,4\n"
    preview = upload(admin_client, "stocklevel", text)
    assert preview.context.get("confirm_form") is not None
    assert ">-2</ins>" in preview.content.decode() and ">+4</ins>" in preview.content.decode()  # the adjustments
    assert not StockMovement.objects.filter(reason="Stock count import").exists()

    response = confirm(admin_client, "stocklevel", preview)

    assert response.status_code == 302
    movements = dict(
        StockMovement.objects.filter(reason="Stock count import").values_list("stock_level__product__sku", "quantity")
    )
    assert movements == {"MUG": -2, "TENT": 4}  # LAMP had no count: skipped
    levels = dict(StockLevel.objects.values_list("product__sku", "on_hand"))
    assert levels == {"MUG": 3, "LAMP": 2, "TENT": 4}
    assert Backorder.objects.get(line__order=waiting).status == Backorder.Status.FILLED
    assert StockMovement.objects.filter(reason="Stock count import", user__username="admin").count() == 2
    assert_invariants()


def test_stock_count_rows_that_cannot_apply_are_shown_and_nothing_changes(admin_client, main):
    stock(ProductFactory(sku="MUG"), main, 5)
    place(("MUG", 4))  # 4 allocated
    text = "sku,warehouse,counted\nMUG,MAIN,2\nNOPE,MAIN,1\nMUG,NOWHERE,1\nMUG,MAIN,-1\n"

    preview = upload(admin_client, "stocklevel", text)

    errors = row_errors(preview)
    assert "4 of MUG at MAIN are allocated to orders" in errors[1]["counted"][0]
    assert errors[2]["sku"] == ["No product with SKU 'NOPE'."]
    assert errors[3]["warehouse"] == ["No warehouse with code 'NOWHERE'."]
    assert errors[4]["counted"] == ["Must be at least 0."]
    assert preview.context.get("confirm_form") is None
    assert StockLevel.objects.get(product__sku="MUG").on_hand == 5
    assert StockMovement.objects.count() == 1


def test_a_count_sheet_without_the_counted_column_is_refused(admin_client, main):
    preview = upload(admin_client, "stocklevel", "sku,warehouse,on_hand\nMUG,MAIN,3\n")

    assert "The file needs the columns sku, warehouse and counted; missing: counted" in preview.content.decode()
    assert preview.context.get("confirm_form") is None


def test_a_confirmed_count_that_no_longer_applies_imports_nothing(admin_client, main):
    stock(ProductFactory(sku="MUG"), main, 5)
    stock(ProductFactory(sku="LAMP"), main, 5)
    preview = upload(admin_client, "stocklevel", "sku,warehouse,counted\nLAMP,MAIN,9\nMUG,MAIN,1\n")
    place(("MUG", 3))  # between the preview and the confirmation, 3 MUG are allocated

    response = confirm(admin_client, "stocklevel", preview)

    assert response.status_code == 302
    assert messages_of(response)[-1].startswith("Nothing was imported: the data changed since the preview.")
    assert dict(StockLevel.objects.values_list("product__sku", "on_hand")) == {"MUG": 5, "LAMP": 5}


# Purchase orders


def test_purchase_order_import_groups_rows_by_number_and_re_pegs_the_waiting_lines(admin_client, main):
    Supplier.objects.create(name="Cascade Gear Co.", lead_time_days=14)
    ProductFactory(sku="MUG", lead_time_days=30)
    ProductFactory(sku="LAMP", lead_time_days=30)
    backorder = Backorder.objects.get(line__order=place(("MUG", 2)))
    expected = timezone.localdate() + timedelta(days=5)
    text = (
        "number,supplier,warehouse,expected_date,status,sku,quantity,line_expected_date\n"
        f"PO-100,Cascade Gear Co.,MAIN,{expected},,MUG,10,\n"
        f"PO-100,Cascade Gear Co.,MAIN,{expected},,LAMP,4,{expected + timedelta(days=2)}\n"
        f"PO-101,,main,{expected},draft,LAMP,1,\n"
    )

    preview = upload(admin_client, "purchaseorder", text)
    assert preview.context.get("confirm_form") is not None
    assert not PurchaseOrder.objects.exists()
    response = confirm(admin_client, "purchaseorder", preview)

    assert response.status_code == 302
    po = PurchaseOrder.objects.get(number="PO-100")
    assert (po.supplier.name, po.status, po.expected_date, po.created_by.username) == (
        "Cascade Gear Co.",
        "ordered",
        expected,
        "admin",
    )
    assert dict(po.lines.values_list("product__sku", "quantity")) == {"MUG": 10, "LAMP": 4}
    assert PurchaseOrder.objects.get(number="PO-101").status == "draft"
    backorder.refresh_from_db()
    assert (backorder.eta_source, backorder.eta) == ("purchase_order", expected + timedelta(days=1))


def test_purchase_order_rows_that_disagree_or_are_wrong_are_shown_and_nothing_is_created(admin_client, main):
    ProductFactory(sku="MUG")
    purchase_order(main, ("MUG", 1), number="PO-OLD")
    day = timezone.localdate() + timedelta(days=5)
    text = (
        "number,warehouse,expected_date,sku,quantity\n"
        f"PO-1,MAIN,{day},MUG,2\n"
        f"PO-1,MAIN,{day + timedelta(days=1)},MUG,0\n"
        f"PO-OLD,MAIN,{day},MUG,1\n"
        "PO-2,MAIN,next week,GHOST,1\n"
    )

    preview = upload(admin_client, "purchaseorder", text)

    errors = row_errors(preview)
    assert set(errors) == {2, 3, 4}
    assert errors[2]["expected_date"][0].startswith("Differs from line 1 of purchase order PO-1")
    assert errors[2]["sku"] == ["MUG is already on purchase order PO-1 (line 1)."]
    assert errors[2]["quantity"] == ["Must be at least 1."]
    assert "already exists" in errors[3]["number"][0]
    assert errors[4]["expected_date"] == ["Write the date as YYYY-MM-DD, not 'next week'."]
    assert errors[4]["sku"] == ["No product with SKU 'GHOST'."]
    assert preview.context.get("confirm_form") is None
    assert list(PurchaseOrder.objects.values_list("number", flat=True)) == ["PO-OLD"]


def test_purchase_order_export_has_one_row_per_line(admin_client, main):
    ProductFactory(sku="MUG")
    ProductFactory(sku="LAMP")
    purchase_order(main, ("MUG", 3), ("LAMP", 2), number="PO-1")

    rows = export(admin_client, "purchaseorder")

    assert [(r["number"], r["warehouse"], r["sku"], r["quantity"], r["received"]) for r in rows] == [
        ("PO-1", "MAIN", "MUG", "3", "0"),
        ("PO-1", "MAIN", "LAMP", "2", "0"),
    ]
