"""Data at scale, written with set-based SQL (INSERT … SELECT generate_series), in the shape of a shop the
morning after its nightly jobs ran: every waiting line has its pegged ETA and (but for the newest 1%) its
compliance clock; nothing is allocated, so the stock ledger is empty and every invariant holds.

Layout for `scale` = N open backorders (one order, one line, one backorder each):

- FILL-BIG: N/10 waiting lines of 1 unit and one open PO covering all of them (scenario 3, one receipt);
- FILL-R-00..09: N/100 waiting lines each, and R/10 open POs each of `lines_per_receipt` units (the R receipts);
- BG-*: N/1000 background products (at least 10) sharing the rest (1-3 units a line); every other one has an
  open PO covering about half of its queue, so pegging yields both sources;
- customers: N/4 (tiers 10% vip, 20% loyal); placed_at spread over the last six days, 1% exactly seven days
  ago (their weekly status update is due today), 1% without a clock yet (the scan starts it).
"""

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta

from django.db import connection

HANDLING_DAYS = 1
LEAD_TIME_DAYS = 14
PO_ARRIVAL_DAYS = 5
RECEIPT_PRODUCTS = 10


@dataclass(frozen=True)
class Layout:
    scale: int
    today: str
    customers: int
    background_products: int
    big_fill_lines: int
    receipt_queue: int
    receipts: int
    lines_per_receipt: int

    @classmethod
    def for_scale(cls, scale: int, today: date) -> "Layout":
        receipt_queue = max(1, scale // 100)
        receipts = min(1000, max(RECEIPT_PRODUCTS, scale // 1000 // RECEIPT_PRODUCTS * RECEIPT_PRODUCTS))
        per_product = receipts // RECEIPT_PRODUCTS
        return cls(
            scale=scale,
            today=today.isoformat(),
            customers=max(100, scale // 4),
            background_products=max(10, scale // 1000),
            big_fill_lines=max(1, scale // 10),
            receipt_queue=receipt_queue,
            receipts=receipts,
            lines_per_receipt=max(1, min(100, receipt_queue // per_product)),
        )

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _run(sql: str, params: dict | None = None) -> int:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return cursor.rowcount


def _ids(sql: str, params: dict | None = None) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or {})
        return [row[0] for row in cursor.fetchall()]


def generate(*, scale: int, today: date, say: Callable[[str], None]) -> Layout:
    """Fill the (freshly migrated) bench database. Returns the layout the scenarios use."""
    layout = Layout.for_scale(scale, today)
    started = time.perf_counter()

    def step(label: str, sql: str, params: dict | None = None) -> None:
        t0 = time.perf_counter()
        rows = _run(sql, params)
        say(f"  {label}: {rows:,} rows in {time.perf_counter() - t0:.1f}s")

    params = {
        "today": today,
        "n": scale,
        "c": layout.customers,
        "b": layout.background_products,
        "nb": layout.big_fill_lines,
        "nr": layout.receipt_queue,
        "k_products": RECEIPT_PRODUCTS,
        "lead": LEAD_TIME_DAYS,
    }
    say(f"generating scale {scale:,} ({layout.as_dict()})")
    _run(
        "INSERT INTO inventory_warehouse (code, name, priority, active) VALUES "
        "('MAIN', 'Main warehouse', 1, true), ('EAST', 'East warehouse', 2, true)"
    )
    [supplier] = _ids(
        "INSERT INTO inventory_supplier (name, email, lead_time_days) "
        "VALUES ('Bench supplier', 'supplier@bench.example', %(lead)s) RETURNING id",
        params,
    )
    params["supplier"] = supplier
    [main] = _ids("SELECT id FROM inventory_warehouse WHERE code = 'MAIN'")
    params["main"] = main
    _run(
        "INSERT INTO backorders_backorderpolicy (id, fill_strategy, handling_days, eta_change_threshold_days, "
        "eta_quiet_minutes, cancellation_offer_days, status_update_days, rolling_backorder_days, status_link_days, "
        "coupon_code, compliance_profile, default_ship_days, credit_ship_days, notice_lead_days, "
        "consent_window_days, refund_working_days, credit_refund_days, holiday_country, eu_delivery_days, "
        "eu_transit_days, eu_additional_period_days, eu_refund_days, updated_at) "
        "VALUES (1, 'fifo', 1, 2, 30, 14, 7, 30, 60, '', 'us_ftc', 30, 50, 2, 30, 7, 30, 'US', 30, 2, 14, 14, now()) "
        "ON CONFLICT (id) DO NOTHING"
    )

    product_sql = (
        "INSERT INTO inventory_product (sku, name, backorders_allowed, discontinued, lead_time_days, safety_stock, "
        "reorder_point, created_at, updated_at, supplier_id, ftc_exempt) "
        "SELECT sku, 'Bench ' || sku, true, false, %(lead)s, 0, 0, now(), now(), %(supplier)s, false "
        "FROM unnest(%(skus)s::text[]) WITH ORDINALITY AS s(sku, i) ORDER BY i RETURNING id"
    )
    [big] = _ids(product_sql, {**params, "skus": ["FILL-BIG"]})
    receipt_ids = _ids(product_sql, {**params, "skus": [f"FILL-R-{j:02d}" for j in range(RECEIPT_PRODUCTS)]})
    background = _ids(product_sql, {**params, "skus": [f"BG-{j:06d}" for j in range(layout.background_products)]})
    params.update(big=big, receipt_ids=receipt_ids, background=background)
    say(f"  products: {2 + RECEIPT_PRODUCTS + len(background) - 1:,}")

    step(
        "customers",
        "INSERT INTO orders_customer (id, email, name, tier, created_at) "
        "SELECT i, 'c' || lpad(i::text, 8, '0') || '@bench.example', 'Customer ' || i, "
        "CASE WHEN i %% 10 = 0 THEN 'vip' WHEN i %% 10 IN (1, 2) THEN 'loyal' ELSE 'standard' END, now() "
        "FROM generate_series(1, %(c)s) AS i",
        params,
    )
    step(
        "line plan (temporary)",
        """
        CREATE UNLOGGED TABLE bench_lines AS
        SELECT k,
               CASE WHEN k <= %(nb)s THEN %(big)s
                    WHEN k <= %(nb)s + %(k_products)s * %(nr)s
                        THEN (%(receipt_ids)s::bigint[])[1 + (k - %(nb)s - 1) %% %(k_products)s]
                    ELSE (%(background)s::bigint[])[1 + k %% %(b)s] END AS product_id,
               CASE WHEN k <= %(nb)s + %(k_products)s * %(nr)s THEN 1 ELSE 1 + k %% 3 END AS qty,
               CASE WHEN k %% 100 = 0 THEN ((%(today)s::date - 7) + time '12:00')::timestamptz
                    ELSE %(today)s::date + time '00:00' - make_interval(secs => (k * 104729) %% (6 * 86400))
                    END AS placed_at,
               1 + (k * 7919) %% %(c)s AS customer_id
        FROM generate_series(1::bigint, %(n)s::bigint) AS k
        """,
        params,
    )
    step(
        "orders",
        "INSERT INTO orders_salesorder (id, number, status, placed_at, ship_complete, ship_by, credit_applied, "
        "created_by_id, customer_id, cash_on_delivery, delivery_essential) "
        "SELECT k, 'BN-' || lpad(k::text, 8, '0'), 'backordered', placed_at, false, NULL, false, NULL, customer_id, "
        "false, false FROM bench_lines ORDER BY k",
    )
    step(
        "order lines",
        "INSERT INTO orders_orderline (id, quantity, allocated, shipped, backordered, cancelled, product_id, order_id) "
        "SELECT k, qty, 0, 0, qty, 0, product_id, k FROM bench_lines ORDER BY k",
    )
    step(
        "backorders",
        "INSERT INTO backorders_backorder (id, quantity, original_quantity, status, priority, placed_at, eta, "
        "eta_source, created_at, closed_at, line_id, product_id) "
        "SELECT k, qty, qty, 'waiting', 0, placed_at, NULL, '', placed_at, NULL, k, product_id "
        "FROM bench_lines ORDER BY k",
    )
    step(
        "compliance clocks",
        "INSERT INTO backorders_complianceclock (id, profile, state, ship_by, revised_date, notices_sent, "
        "last_notice_on, consent, consent_deadline, indefinite_consent, cancelled_on, refund_due_by, refund_units, "
        "created_at, updated_at, line_id) "
        "SELECT k, 'us_ftc', 'open', (placed_at AT TIME ZONE 'UTC')::date + 30, NULL, 0, NULL, 'none', NULL, false, "
        "NULL, NULL, 0, placed_at, placed_at, k FROM bench_lines WHERE k %% 100 <> 1 ORDER BY k",
    )
    step(
        "compliance events (clock started)",
        'INSERT INTO backorders_complianceevent (kind, "on", channel, ip_address, details, dedupe_key, created_at, '
        "line_id) "
        "SELECT 'clock_started', (placed_at AT TIME ZONE 'UTC')::date, 'system', NULL, "
        "jsonb_build_object('ship_by', ((placed_at AT TIME ZONE 'UTC')::date + 30)::text, 'profile', 'us_ftc', "
        "'exempt', false), 'clock:' || k, placed_at, k FROM bench_lines WHERE k %% 100 <> 1 ORDER BY k",
    )
    step(
        "stock levels",
        "INSERT INTO inventory_stocklevel (on_hand, allocated, product_id, warehouse_id) "
        "SELECT 0, 0, p, %(main)s FROM unnest(%(all_products)s::bigint[]) AS p",
        {**params, "all_products": [big, *receipt_ids, *background]},
    )
    _purchase_orders(layout, params, step)
    for table in (
        "orders_customer",
        "orders_salesorder",
        "orders_orderline",
        "backorders_backorder",
        "backorders_complianceclock",
    ):
        _run(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
    _run("DROP TABLE bench_lines")
    step(
        "ETAs (pegged)",
        """
        WITH q AS (
            SELECT id, product_id,
                   sum(quantity) OVER (PARTITION BY product_id ORDER BY priority DESC, placed_at, line_id) AS pos
            FROM backorders_backorder WHERE status = 'waiting'
        ), s AS (
            SELECT pol.product_id, sum(pol.quantity - pol.received) AS total,
                   max(greatest(coalesce(pol.expected_date, po.expected_date), %(today)s::date)) AS arrival
            FROM inventory_purchaseorderline pol JOIN inventory_purchaseorder po ON po.id = pol.purchase_order_id
            WHERE po.status IN ('ordered', 'partially_received') AND pol.received < pol.quantity
            GROUP BY pol.product_id
        )
        UPDATE backorders_backorder b
        SET eta = CASE WHEN s.total >= q.pos THEN s.arrival + %(handling)s
                       ELSE %(today)s::date + %(lead)s + %(handling)s END,
            eta_source = CASE WHEN s.total >= q.pos THEN 'purchase_order' ELSE 'lead_time' END
        FROM q LEFT JOIN s ON s.product_id = q.product_id
        WHERE b.id = q.id
        """,
        {**params, "handling": HANDLING_DAYS},
    )
    say(f"generated in {time.perf_counter() - started:.0f}s")
    return layout


def _purchase_orders(layout: Layout, params: dict, step) -> None:
    """Open POs: FILL-BIG's one, FILL-R's R receipts, and one line for every other background product."""
    per_product = layout.receipts // RECEIPT_PRODUCTS
    po_sql = (
        "INSERT INTO inventory_purchaseorder (number, status, expected_date, created_at, created_by_id, "
        "warehouse_id, supplier_id) "
        "SELECT number, 'ordered', %(today)s::date + days, now(), NULL, %(main)s, %(supplier)s "
        "FROM unnest(%(numbers)s::text[], %(days)s::int[]) AS x(number, days)"
    )
    line_sql = (
        "INSERT INTO inventory_purchaseorderline (quantity, received, expected_date, product_id, purchase_order_id) "
        "SELECT qty, 0, NULL, product, po.id FROM unnest(%(numbers)s::text[], %(products)s::bigint[], "
        "%(quantities)s::int[]) AS x(number, product, qty) JOIN inventory_purchaseorder po ON po.number = x.number"
    )
    numbers = ["PO-FILL-BIG"]
    products = [params["big"]]
    quantities = [layout.big_fill_lines]
    for j, product in enumerate(params["receipt_ids"]):
        for n in range(per_product):
            numbers.append(f"PO-FR-{j:02d}-{n:04d}")
            products.append(product)
            quantities.append(layout.lines_per_receipt)
    days = [PO_ARRIVAL_DAYS] * len(numbers)
    step("purchase orders (fills)", po_sql, {**params, "numbers": numbers, "days": days})
    step(
        "purchase order lines (fills)",
        line_sql,
        {**params, "numbers": numbers, "products": products, "quantities": quantities},
    )
    # Every other background product: one PO line for about half of its queue, 100 products per PO.
    step(
        "purchase orders (background)",
        "INSERT INTO inventory_purchaseorder (number, status, expected_date, created_at, created_by_id, "
        "warehouse_id, supplier_id) "
        "SELECT 'PO-BG-' || lpad(g::text, 5, '0'), 'ordered', %(today)s::date + 3 + g %% 7, now(), NULL, %(main)s, "
        "%(supplier)s FROM generate_series(0, (cardinality(%(background)s::bigint[]) - 1) / 200) AS g",
        params,
    )
    step(
        "purchase order lines (background)",
        """
        INSERT INTO inventory_purchaseorderline (quantity, received, expected_date, product_id, purchase_order_id)
        SELECT greatest(1, (w.units + 1) / 2), 0, NULL, p.id, po.id
        FROM unnest(%(background)s::bigint[]) WITH ORDINALITY AS p(id, i)
        JOIN LATERAL (SELECT coalesce(sum(quantity), 0) AS units FROM backorders_backorder
                      WHERE product_id = p.id AND status = 'waiting') w ON true
        JOIN inventory_purchaseorder po ON po.number = 'PO-BG-' || lpad(((p.i - 1) / 200)::text, 5, '0')
        WHERE p.i %% 2 = 1
        """,
        params,
    )


def setup_placement_products(*, tag: str, orders: int, cold_skus: int, hot_share: float = 0.9) -> dict[str, object]:
    """Products for one placement run: HOT-<tag> and COLD-<tag>-NNNN, each stocked (with its ledger row) for
    `hot_share` of the orders it will get, so the last ones backorder; returns the SKUs and stock."""
    per_cold = max(1, orders // cold_skus)
    hot_stock = int(orders * hot_share)
    cold_stock = int(per_cold * hot_share)
    skus = [f"HOT-{tag}"] + [f"COLD-{tag}-{i:04d}" for i in range(cold_skus)]
    stock = [hot_stock] + [cold_stock] * cold_skus
    _run(
        """
        WITH p AS (
            INSERT INTO inventory_product (sku, name, backorders_allowed, discontinued, lead_time_days, safety_stock,
                                           reorder_point, created_at, updated_at, supplier_id, ftc_exempt)
            SELECT sku, 'Bench ' || sku, true, false, %(lead)s, 0, 0, now(), now(), NULL, false
            FROM unnest(%(skus)s::text[]) AS sku
            RETURNING id, sku
        ), s AS (
            INSERT INTO inventory_stocklevel (on_hand, allocated, product_id, warehouse_id)
            SELECT x.units, 0, p.id, (SELECT id FROM inventory_warehouse WHERE code = 'MAIN')
            FROM p JOIN unnest(%(skus)s::text[], %(stock)s::int[]) AS x(sku, units) ON x.sku = p.sku
            RETURNING id, on_hand
        )
        INSERT INTO inventory_stockmovement (movement_type, quantity, reason, source, created_at, stock_level_id,
                                             user_id)
        SELECT 'receipt', on_hand, 'Bench stock', 'bench', now(), id, NULL FROM s WHERE on_hand > 0
        """,
        {"skus": skus, "stock": stock, "lead": LEAD_TIME_DAYS},
    )
    return {"hot": skus[0], "cold": skus[1:], "hot_stock": hot_stock, "cold_stock": cold_stock}


def today_plus(today: str, days: int) -> str:
    return (date.fromisoformat(today) + timedelta(days=days)).isoformat()
