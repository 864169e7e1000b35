"""The scenarios, each run by bench.worker in a process of its own. Every function returns a dict of figures."""

import io
import re
import time
from datetime import date, timedelta

from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum

from backorders.models import Backorder
from bench import reference
from bench.measure import Timers, count_queries, percentile, time_calls
from inventory.models import PurchaseOrder, StockLevel

# --- setup --------------------------------------------------------------------------------------------------


def prepare_users() -> dict[str, object]:
    """A superuser for the admin changelists; a Storefront-role API user (the role a shop front end has) whose
    token the HTTP load posts orders with, so each request pays the model-permission check a real storefront pays."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from backorders.roles import STOREFRONT

    user, created = get_user_model().objects.get_or_create(
        username="bench-admin", defaults={"is_staff": True, "is_superuser": True, "email": "admin@bench.example"}
    )
    if created:
        user.set_password("bench-admin")
        user.save(update_fields=["password"])
    storefront, _ = get_user_model().objects.get_or_create(
        username="bench-storefront", defaults={"email": "storefront@bench.example"}
    )
    storefront.groups.add(Group.objects.get(name=STOREFRONT))
    token, _ = Token.objects.get_or_create(user=storefront)
    return {"token": token.key}


def recompute_check(*, product_skus: list[str], today: str) -> dict[str, object]:
    """The generated ETAs are what the engine computes: a re-peg on the same day changes nothing (rolled back)."""
    from django.db import transaction

    from backorders.services.eta import etas_recompute
    from inventory.models import Product

    ids = list(Product.objects.filter(sku__in=product_skus).values_list("pk", flat=True))
    changed = None
    try:
        with transaction.atomic():
            changed = etas_recompute(product_ids=ids, as_of=date.fromisoformat(today))
            raise _Discard
    except _Discard:
        pass
    return {"products": len(ids), "changed": changed}


class _Discard(Exception):
    pass


# --- 1. order placement -------------------------------------------------------------------------------------


def place(
    *, mode: str, skus: list[str], total: int, index: int, procs: int, start_at: float, max_seconds: float, tag: str
) -> dict[str, object]:
    """Place this process's share of `total` one-unit orders (every `procs`-th from `index`), from `start_at`.

    mode "service": backorders.services.placement.order_place; mode "bare": the bare ORM reference."""
    from backorders.services.placement import CustomerRequest, LineRequest, order_place

    connection.ensure_connection()
    latencies: list[float] = []
    errors: list[str] = []
    while time.time() < start_at:
        time.sleep(0.001)
    began = time.time()
    for i in range(index, total, procs):
        sku = skus[i % len(skus)]
        email = f"{tag}-{i}@bench.example"
        started = time.perf_counter()
        try:
            if mode == "service":
                order_place(customer=CustomerRequest(email=email, name=f"Bench {i}"), lines=[LineRequest(sku, 1)])
            else:
                reference.bare_order(email=email, sku=sku, number=f"REF-{tag}-{i:07d}")
        except Exception as exc:  # reported, not hidden: a failed order counts as an error
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
        latencies.append((time.perf_counter() - started) * 1000)
        if time.time() - began > max_seconds:
            break
    return {
        "orders": len(latencies) - len(errors),
        "errors": errors[:5],
        "error_count": len(errors),
        "began": began,
        "ended": time.time(),
        "latencies_ms": [round(x, 3) for x in latencies],
    }


def placement_check(*, skus: list[str]) -> dict[str, object]:
    """Oversold units (allocations beyond on hand) and what was allocated/backordered on these SKUs."""
    from orders.models import Allocation, OrderLine

    levels = StockLevel.objects.filter(product__sku__in=skus)
    on_hand = {pk: on for pk, on in levels.values_list("pk", "on_hand")}
    live = dict(
        Allocation.objects.filter(stock_level_id__in=on_hand)
        .values("stock_level_id")
        .annotate(s=Sum("quantity"))
        .values_list("stock_level_id", "s")
    )
    oversold = sum(max(0, live.get(pk, 0) - units) for pk, units in on_hand.items())
    sums = OrderLine.objects.filter(product__sku__in=skus).aggregate(a=Sum("allocated"), b=Sum("backordered"))
    return {
        "oversold_units": oversold,
        "stock": sum(on_hand.values()),
        "allocated": sums["a"] or 0,
        "backordered": sums["b"] or 0,
    }


# --- 3. receipt fill ----------------------------------------------------------------------------------------


def _fill_timers() -> Timers:
    import backorders.services.allocation as allocation
    import backorders.services.purchasing as purchasing
    import notifications.services as notifications

    timers = Timers()
    # The emails' INSERT runs inside the fill's statement (not separable); this times building its rows and the
    # backorder.filled events.
    time_calls(timers, allocation, "notify_filled_statement", "notify_filled (emails' rows, events)")
    time_calls(timers, allocation, "notify_filled_events", "notify_filled (emails' rows, events)")
    time_calls(timers, notifications, "render", "render (inside notify_filled)")
    time_calls(timers, notifications, "enqueue_send_many", "enqueue on commit")
    time_calls(timers, allocation, "etas_recompute", "etas_recompute after fill")
    time_calls(timers, purchasing, "etas_recompute_after_receipt", "etas_recompute_after_receipt (bounded re-peg)")
    return timers


def _engine_seconds(total: float, timers: Timers) -> float:
    by = timers.by_name
    return total - by["notify_filled (emails' rows, events)"].seconds - by["enqueue on commit"].seconds


# What a fill writes (the reference statement's rolled-back runs leave dead rows there).
FILL_TABLES = (
    "backorders_backorder",
    "orders_orderline",
    "orders_salesorder",
    "orders_allocation",
    "inventory_stocklevel",
    "inventory_stockmovement",
    "notifications_notification",
)


# Receipts the reference statement is timed over (spread over the engine's run).
REFERENCE_RECEIPTS = 10


def _fill_params(po: PurchaseOrder) -> dict[str, object]:
    """FIFO_FILL_SQL's parameters for receiving all of `po` (one line) at its warehouse."""
    po_line = po.lines.get()
    level = StockLevel.objects.get(product_id=po_line.product_id, warehouse=po.warehouse)
    return {
        "units": po_line.outstanding,
        "level": level.pk,
        "product": po_line.product_id,
        "po_line": po_line.pk,
    }


def _reference_fill(po: PurchaseOrder, *, runs: int = 1) -> dict[str, object]:
    """FIFO_FILL_SQL receiving `po`, timed (the best of `runs`) and rolled back, its foreign keys checked."""
    with transaction.atomic():  # the statement runs in a savepoint of this (otherwise empty) transaction
        _constraints_immediate()
        return reference.timed_statement(reference.FIFO_FILL_SQL, _fill_params(po), runs=runs)


def _constraints_immediate() -> None:
    """Foreign keys are checked at commit (deferred): the engines commit, the references' statements are rolled
    back, so they check them at once instead."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


def fill_big(*, number: str = "PO-FILL-BIG") -> dict[str, object]:
    """One receipt covering every waiting line of FILL-BIG (scale/10 lines)."""
    from backorders.services.purchasing import purchase_order_receive

    po = PurchaseOrder.objects.select_related("warehouse").get(number=number)
    po_line = po.lines.get()
    waiting = Backorder.objects.filter(product_id=po_line.product_id, status=Backorder.Status.WAITING).count()
    ref = _reference_fill(po, runs=2)
    reference.vacuum(*FILL_TABLES)
    timers = _fill_timers()
    with count_queries() as queries:
        started = time.perf_counter()
        result = purchase_order_receive(purchase_order=po)
        seconds = time.perf_counter() - started
    lines = result.fill.lines_filled + result.fill.lines_partly_filled
    engine = _engine_seconds(seconds, timers)
    ref_lines = ref["result"][0][0]
    return {
        "waiting_lines": waiting,
        "lines_filled": lines,
        "seconds": round(seconds, 3),
        "lines_per_s": round(lines / seconds, 1),
        "engine_seconds": round(engine, 3),
        "engine_lines_per_s": round(lines / engine, 1) if engine > 0 else None,
        "queries": queries.count,
        "timers": timers.as_dict(),
        "reference_seconds": ref["seconds"],
        "reference_lines": ref_lines,
        "reference_lines_per_s": round(ref_lines / ref["seconds"], 1) if ref["seconds"] else None,
    }


def fill_receipts(*, prefix: str = "PO-FR-") -> dict[str, object]:
    """The many small receipts: each PO-FR-* receipt fills lines_per_receipt lines of a deep queue, beside the mean
    of the reference statement over REFERENCE_RECEIPTS of them."""
    from backorders.services.purchasing import purchase_order_receive

    pos = sorted(
        PurchaseOrder.objects.filter(number__startswith=prefix).select_related("warehouse"),
        key=lambda po: (po.number.rsplit("-", 1)[1], po.number),  # rotate over the products
    )
    # The reference is timed like the engine and beside it: over REFERENCE_RECEIPTS of the receipts, spread over the
    # run, each once (rolled back) right before the engine receives the same PO, so both meet the same load on a
    # shared machine; their mean; its deferred foreign-key checks run as a commit runs them. After one untimed run
    # (this new connection's first use of the tables), which the engine's own first receipt spreads over all of its
    # receipts. Its rolled-back rows are not vacuumed away before the engine's next receipts.
    ref_ms: list[float] = []
    ref_lines = 0
    every = max(1, len(pos) // REFERENCE_RECEIPTS)
    _reference_fill(pos[-1])
    timers = _fill_timers()
    per_receipt_ms: list[float] = []
    query_counts: list[int] = []
    lines = 0
    for i, po in enumerate(pos):
        if i % every == 0 and len(ref_ms) < REFERENCE_RECEIPTS:
            ref = _reference_fill(po)
            ref_ms.append(ref["seconds"] * 1000)
            ref_lines += ref["result"][0][0]
        with count_queries() as queries:
            t0 = time.perf_counter()
            result = purchase_order_receive(purchase_order=po)
            per_receipt_ms.append((time.perf_counter() - t0) * 1000)
        query_counts.append(queries.count)
        lines += result.fill.lines_filled + result.fill.lines_partly_filled
    seconds = sum(per_receipt_ms) / 1000
    engine = _engine_seconds(seconds, timers)
    ref_seconds = sum(ref_ms) / 1000
    return {
        "receipts": len(pos),
        "lines_filled": lines,
        "seconds": round(seconds, 3),
        "lines_per_s": round(lines / seconds, 1),
        "engine_lines_per_s": round(lines / engine, 1) if engine > 0 else None,
        "receipt_p50_ms": round(percentile(per_receipt_ms, 50), 2),
        "receipt_p99_ms": round(percentile(per_receipt_ms, 99), 2),
        "queries_per_receipt": sorted(set(query_counts)),
        "timers": timers.as_dict(),
        "reference_receipts": len(ref_ms),
        "reference_seconds_per_receipt": round(ref_seconds / len(ref_ms), 4),
        "reference_receipt_p50_ms": round(percentile(ref_ms, 50), 2),
        "reference_lines_per_s": round(ref_lines / ref_seconds, 1) if ref_seconds else None,
    }


# --- 4. nightly ETA recompute and daily scan ---------------------------------------------------------------


def recompute(*, as_of: str) -> dict[str, object]:
    """`manage.py recompute_etas --as-of <the day after generation>`: every lead-time ETA moves a day."""
    import backorders.services.eta as eta

    waiting = Backorder.objects.filter(status=Backorder.Status.WAITING).count()
    ref = reference.timed_statement(reference.REPEG_SQL, {"as_of": as_of, "handling": 1}, runs=1)
    reference.vacuum("backorders_backorder", "backorders_etachange")
    timers = Timers()
    time_calls(timers, eta, "notify_eta_changes", "notify_eta_changes")
    out = io.StringIO()
    with count_queries() as queries:
        started = time.perf_counter()
        call_command("recompute_etas", as_of=as_of, stdout=out)
        seconds = time.perf_counter() - started
    changed_sql = ref["result"]
    return {
        "waiting_lines": waiting,
        "seconds": round(seconds, 2),
        "rows_per_s": round(waiting / seconds, 1),
        "queries": queries.count,
        "summary": out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else "",
        "timers": timers.as_dict(),
        "reference_seconds": ref["seconds"],
        "reference_changed": changed_sql,
        "reference_rows_per_s": round(waiting / ref["seconds"], 1) if ref["seconds"] else None,
    }


def scan(*, as_of: str) -> dict[str, object]:
    """`manage.py scan_backorders --as-of <generation day>`: every open line decided once, beside SCAN_SQL (the
    same writes in one statement, rolled back; its deferred foreign-key checks run, as the engine's commits run
    them). The engine's counts and the statement's are reported side by side."""
    import notifications.services as notifications
    from backorders.models import BackorderPolicy

    policy = BackorderPolicy.current()
    waiting = Backorder.objects.filter(status=Backorder.Status.WAITING).count()
    params = reference.scan_params(date.fromisoformat(as_of), policy=policy)
    with transaction.atomic():  # the statement runs in a savepoint of this (otherwise empty) transaction
        _constraints_immediate()
        ref = reference.timed_statement(reference.SCAN_SQL, params, runs=2)
    reference.vacuum("backorders_complianceclock", "backorders_complianceevent", "notifications_notification")
    timers = Timers()
    time_calls(timers, notifications, "render", "render emails")
    import backorders.services.compliance as compliance

    time_calls(timers, compliance, "clocks_start", "clocks_start (one statement a batch)")
    time_calls(timers, compliance, "_offers_and_updates", "offers and status updates")
    out = io.StringIO()
    with count_queries() as queries:
        started = time.perf_counter()
        call_command("scan_backorders", as_of=as_of, stdout=out)
        seconds = time.perf_counter() - started
    summary = out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else ""
    done = {name: int(n) for name, n in re.findall(r"([a-z][a-z ]*?) (\d+)(?:,|\.$)", summary.split(": ", 1)[-1])}
    [(ref_started, ref_closed, ref_decisions, ref_offers, ref_updates)] = ref["result"]
    decided = sum(done.get(k, 0) for k in ("notices", "renewed notices", "cancellations", "periods expired"))
    return {
        "waiting_lines": waiting,
        "seconds": round(seconds, 2),
        "rows_per_s": round(waiting / seconds, 1),
        "queries": queries.count,
        "summary": summary,
        "timers": timers.as_dict(),
        "counts": {
            "clocks started": [done.get("clocks started"), ref_started],
            "clocks closed": [done.get("clocks closed"), ref_closed],
            "actions decided": [decided, ref_decisions],
            "cancellation offers": [done.get("cancellation offers"), ref_offers],
            "status updates": [done.get("status updates"), ref_updates],
        },
        "reference_seconds": ref["seconds"],
        "reference_result": ref["result"],
        "reference_rows_per_s": round(waiting / ref["seconds"], 1) if ref["seconds"] else None,
    }


# --- 5. admin changelists -----------------------------------------------------------------------------------

CHANGELISTS = {
    "orders": "/admin/orders/salesorder/",
    "backorders": "/admin/backorders/backorder/",
}


def admin_changelists(*, runs: int = 7) -> dict[str, object]:
    """p50 render time and queries of each changelist's first page, as a superuser (test Client)."""
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username="bench-admin"))
    figures: dict[str, object] = {}
    for name, url in CHANGELISTS.items():
        client.get(url)  # warm: templates, permissions, caches
        times: list[float] = []
        queries: list[int] = []
        status = None
        for _ in range(runs):
            with count_queries() as counter:
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
            status = response.status_code
            queries.append(counter.count)
        figures[name] = {
            "status": status,
            "p50_ms": round(percentile(times, 50), 1),
            "max_ms": round(max(times), 1),
            "queries": sorted(set(queries)),
            "rows": _table_rows(name),
        }
    return figures


def _table_rows(name: str) -> int:
    table = {"orders": "orders_salesorder", "backorders": "backorders_backorder"}[name]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


# --- memory: a CSV import ------------------------------------------------------------------------------------


def csv_import(*, rows: int) -> dict[str, object]:
    """A product CSV import of `rows` new SKUs through the admin's resource (django-import-export)."""
    import tablib

    from backorders.resources import ProductResource

    dataset = tablib.Dataset(headers=ProductResource.Meta.fields)
    for i in range(rows):
        dataset.append([f"CSV-{i:07d}", f"Imported {i}", "yes", "no", "no", "7", "Bench supplier", "0", "0"])
    with count_queries() as queries:
        started = time.perf_counter()
        result = ProductResource().import_data(dataset, dry_run=False, raise_errors=True)
        seconds = time.perf_counter() - started
    return {
        "rows": rows,
        "seconds": round(seconds, 2),
        "rows_per_s": round(rows / seconds, 1),
        "queries": queries.count,
        "errors": result.has_errors(),
    }


# --- checks --------------------------------------------------------------------------------------------------


def invariants() -> dict[str, object]:
    from backorders.invariants import invariant_violations

    started = time.perf_counter()
    problems = invariant_violations(limit=10)
    return {"violations": problems, "seconds": round(time.perf_counter() - started, 2)}


def day_after(today: str) -> str:
    return (date.fromisoformat(today) + timedelta(days=1)).isoformat()
