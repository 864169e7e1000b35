"""The references: what the database alone can do, measured in the same run, so the engines' figures are ratios.

- the hot-row ceiling: pgbench, a locked SELECT then an UPDATE of one row, 2 and 4 clients;
- a bare ORM order transaction: only the minimal writes, no service;
- one SQL statement each for a FIFO fill (with its outbox rows, as the engine writes them), an ETA re-peg and
  the compliance scan's decisions.

The statements run inside a transaction that is rolled back (and the tables vacuumed), so the engines
then meet the same data.
"""

import re
import subprocess
import tempfile
import time
from datetime import date

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from backorders.models import Backorder
from inventory.models import StockLevel
from notifications.models import Notification
from orders.models import Allocation, Customer, OrderLine, SalesOrder

PGBENCH_SCRIPT = """\
BEGIN;
SELECT on_hand, allocated FROM bench_hot_row WHERE id = 1 FOR UPDATE;
UPDATE bench_hot_row SET allocated = allocated + 1 WHERE id = 1;
COMMIT;
"""


def pgbench_hot_row(*, dsn: dict[str, str], clients: int, seconds: int) -> dict[str, float]:
    """Locked SELECT + UPDATE of one row, `clients` connections for `seconds`: transactions per second."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_hot_row (id int PRIMARY KEY, on_hand int, allocated int)")
        cursor.execute("TRUNCATE bench_hot_row")
        cursor.execute("INSERT INTO bench_hot_row VALUES (1, 1000000000, 0)")
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as script:
        script.write(PGBENCH_SCRIPT)
        script.flush()
        command = ["pgbench", "-n", "-f", script.name, "-c", str(clients), "-j", str(clients), "-T", str(seconds)]
        command += ["-h", dsn["host"], "-p", str(dsn["port"]), "-U", dsn["user"], dsn["name"]]
        output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    tps = re.search(
        r"tps = ([\d.]+) \((?:without initial connection time|excluding connections establishing)\)", output
    )
    latency = re.search(r"latency average = ([\d.]+) ms", output)
    return {
        "clients": clients,
        "tps": round(float(tps.group(1)), 1) if tps else 0.0,
        "latency_ms": float(latency.group(1)) if latency else 0.0,
    }


@transaction.atomic
def bare_order(*, email: str, sku: str, number: str) -> bool:
    """The bare reference: customer, order, line, guarded stock UPDATE, allocation or backorder (+ outbox row).

    Plain ORM, no validation, no plan, no ETA, no rendering. True when the unit was allocated."""
    level_id, product_id = (
        StockLevel.objects.filter(product__sku=sku, warehouse__active=True).values_list("pk", "product_id").first()
    )
    now = timezone.now()
    customer, _ = Customer.objects.get_or_create(email=email, defaults={"name": email})
    order = SalesOrder.objects.create(number=number, customer=customer, placed_at=now, status="allocated")
    line = OrderLine.objects.create(order=order, product_id=product_id, quantity=1, allocated=1)
    taken = StockLevel.objects.filter(pk=level_id, allocated__lt=F("on_hand")).update(allocated=F("allocated") + 1)
    if taken:
        Allocation.objects.create(line=line, stock_level_id=level_id, quantity=1)
        return True
    OrderLine.objects.filter(pk=line.pk).update(allocated=0, backordered=1)
    SalesOrder.objects.filter(pk=order.pk).update(status="backordered")
    Backorder.objects.create(line=line, product_id=product_id, quantity=1, original_quantity=1, placed_at=now)
    Notification.objects.create(
        kind=Notification.Kind.BACKORDER_CREATED,
        customer=customer,
        order=order,
        dedupe_key=f"backorder_created:{order.pk}",
        to_email=email,
        subject=f"{number}: backordered",
        body_text="Backordered.",
        body_html="<p>Backordered.</p>",
    )
    return False


FIFO_FILL_SQL = """
WITH level AS (
    SELECT id, on_hand + %(units)s - allocated AS available FROM inventory_stocklevel WHERE id = %(level)s FOR UPDATE
), head AS (
    SELECT b.id, b.line_id, b.quantity,
           sum(b.quantity) OVER (ORDER BY b.priority DESC, b.placed_at, b.line_id) - b.quantity AS ahead
    FROM (SELECT * FROM backorders_backorder
          WHERE product_id = %(product)s AND status = 'waiting'
          ORDER BY priority DESC, placed_at, line_id
          LIMIT (SELECT greatest(available, 0) FROM level)) b
), take AS (
    SELECT h.id, h.line_id, h.quantity AS waiting, least(h.quantity, level.available - h.ahead) AS units,
           level.id AS level_id
    FROM head h CROSS JOIN level WHERE h.ahead < level.available
), filled_backorders AS (
    UPDATE backorders_backorder b
    SET quantity = b.quantity - t.units,
        status = CASE WHEN t.units = t.waiting THEN 'filled' ELSE 'waiting' END,
        closed_at = CASE WHEN t.units = t.waiting THEN now() END
    FROM take t WHERE b.id = t.id
), lines AS (
    UPDATE orders_orderline l SET allocated = l.allocated + t.units, backordered = l.backordered - t.units
    FROM take t WHERE l.id = t.line_id
    RETURNING l.id, l.order_id, l.backordered
), allocations AS (
    INSERT INTO orders_allocation (quantity, stock_level_id, line_id)
    SELECT units, level_id, line_id FROM take
    ON CONFLICT (line_id, stock_level_id) DO UPDATE SET quantity = orders_allocation.quantity + excluded.quantity
), orders AS (
    UPDATE orders_salesorder o SET status = 'allocated'
    FROM lines
    WHERE o.id = lines.order_id AND lines.backordered = 0
      AND NOT EXISTS (SELECT 1 FROM orders_orderline x WHERE x.order_id = o.id AND x.id <> lines.id
                      AND x.backordered > 0)
), ledger AS (
    INSERT INTO inventory_stockmovement (movement_type, quantity, reason, source, created_at, stock_level_id)
    VALUES ('receipt', %(units)s, 'Reference fill', 'bench', now(), %(level)s)
), outbox AS (
    -- one backorder_filled email per line filled whole, stored for the sender to render (as the engine does)
    INSERT INTO notifications_notification (kind, status, customer_id, to_email, order_id, line_id, dedupe_key,
        subject, body_text, body_html, attempts, last_error, scheduled_for, data, rendered, created_at)
    SELECT 'backorder_filled', 'pending', o.customer_id, c.email, l.order_id, t.line_id, 'backorder_filled:' || t.id,
           '', '', '', 0, '', now(), '{}', false, now()
    FROM take t JOIN orders_orderline l ON l.id = t.line_id JOIN orders_salesorder o ON o.id = l.order_id
         JOIN orders_customer c ON c.id = o.customer_id
    WHERE t.units = t.waiting
    ON CONFLICT (dedupe_key) DO NOTHING
)
UPDATE inventory_stocklevel s
SET on_hand = s.on_hand + %(units)s, allocated = s.allocated + (SELECT coalesce(sum(units), 0) FROM take)
WHERE s.id = %(level)s
RETURNING (SELECT count(*) FROM take)
"""


REPEG_SQL = """
WITH supply AS (
    SELECT pol.product_id, po.number,
           greatest(coalesce(pol.expected_date, po.expected_date), %(as_of)s::date) AS arrival,
           sum(pol.quantity - pol.received) OVER (
               PARTITION BY pol.product_id
               ORDER BY greatest(coalesce(pol.expected_date, po.expected_date), %(as_of)s::date),
                        coalesce(pol.expected_date, po.expected_date), pol.id) AS covered
    FROM inventory_purchaseorderline pol JOIN inventory_purchaseorder po ON po.id = pol.purchase_order_id
    WHERE po.status IN ('ordered', 'partially_received') AND pol.received < pol.quantity
), queue AS (
    SELECT b.id, b.product_id, b.eta, b.eta_source,
           sum(b.quantity) OVER (PARTITION BY b.product_id ORDER BY b.priority DESC, b.placed_at, b.line_id) AS pos
    FROM backorders_backorder b WHERE b.status = 'waiting'
), events AS (
    SELECT product_id, pos AS at, 0 AS kind, id, eta, eta_source, NULL::text AS peg FROM queue
    UNION ALL
    SELECT product_id, covered, 1, NULL, NULL, NULL,
           lpad(covered::text, 20, '0') || to_char(arrival, 'YYYY-MM-DD') || number FROM supply
), pegged AS (
    -- the nearest supply at or after each queue position: a running min over the reversed order
    SELECT id, product_id, eta, eta_source,
           min(peg) OVER (PARTITION BY product_id ORDER BY at DESC, kind DESC ROWS UNBOUNDED PRECEDING) AS peg
    FROM events
), fresh AS (
    SELECT g.id, g.eta AS old_eta, g.eta_source AS old_source,
           CASE WHEN p.discontinued THEN NULL
                WHEN g.peg IS NOT NULL THEN substr(g.peg, 21, 10)::date + %(handling)s
                ELSE greatest(%(as_of)s::date + coalesce(p.lead_time_days, s.lead_time_days) + %(handling)s,
                              (SELECT max(arrival) FROM supply x WHERE x.product_id = g.product_id) + %(handling)s)
           END AS eta,
           CASE WHEN p.discontinued THEN '' WHEN g.peg IS NOT NULL THEN 'purchase_order' ELSE 'lead_time' END AS source,
           CASE WHEN p.discontinued THEN 'No restock expected'
                WHEN g.peg IS NOT NULL THEN 'Pegged to ' || substr(g.peg, 31)
                ELSE 'Lead time (no open purchase order covers it)' END AS reason
    FROM pegged g
    JOIN inventory_product p ON p.id = g.product_id
    LEFT JOIN inventory_supplier s ON s.id = p.supplier_id
    WHERE g.id IS NOT NULL AND g.eta_source <> 'manual'
), changed AS (
    UPDATE backorders_backorder b SET eta = f.eta, eta_source = f.source
    FROM fresh f
    WHERE b.id = f.id AND (b.eta IS DISTINCT FROM f.eta OR b.eta_source <> f.source)
    RETURNING b.id, f.old_eta, f.old_source, f.eta, f.source, f.reason
)
INSERT INTO backorders_etachange (backorder_id, old_eta, new_eta, old_source, new_source, reason, created_at)
SELECT id, old_eta, eta, old_source, source, reason, now() FROM changed
"""


SCAN_SQL = """
SELECT
    (SELECT count(*) FROM orders_orderline l
     WHERE l.backordered > 0 AND NOT EXISTS (SELECT 1 FROM backorders_complianceclock c WHERE c.line_id = l.id))
        AS clocks_to_start,
    (SELECT count(*) FROM backorders_complianceclock c JOIN orders_orderline l ON l.id = c.line_id
     WHERE c.state = 'open' AND l.backordered = 0 AND l.allocated = 0) AS clocks_to_close,
    (SELECT count(*) FILTER (WHERE action <> 'none') FROM (
        SELECT CASE
            WHEN c.consent_deadline IS NOT NULL AND %(today)s::date > c.consent_deadline
                 AND c.consent <> 'express' THEN 'cancel'
            WHEN c.notices_sent = 0 AND %(today)s::date > c.ship_by THEN 'cancel'
            WHEN c.notices_sent = 0 AND b.eta IS NOT NULL AND b.eta <= c.ship_by
                 AND %(today)s::date < c.ship_by - %(lead)s THEN 'none'
            WHEN c.notices_sent = 0 THEN 'notice'
            WHEN c.indefinite_consent OR c.revised_date IS NULL THEN 'none'
            WHEN c.consent_deadline IS NOT NULL AND c.consent <> 'express' THEN 'none'
            WHEN NOT (b.eta IS NULL OR b.eta > c.revised_date OR %(today)s::date >= c.revised_date - %(lead)s)
                 THEN 'none'
            WHEN %(today)s::date <> c.revised_date THEN 'renewed_notice_or_cancel'
            ELSE 'none' END AS action
        FROM backorders_complianceclock c
        JOIN orders_orderline l ON l.id = c.line_id
        LEFT JOIN backorders_backorder b ON b.line_id = l.id
        WHERE c.state = 'open' AND l.backordered > 0) d) AS decisions,
    (SELECT count(*) FROM backorders_backorder b
     WHERE b.status = 'waiting' AND (b.placed_at < %(offer_cutoff)s OR b.eta IS NULL)
       AND NOT EXISTS (SELECT 1 FROM notifications_notification n
                       WHERE n.line_id = b.line_id AND n.kind = 'cancellation_offer')) AS offers_due,
    (SELECT count(*) FROM backorders_backorder b
     WHERE b.status = 'waiting' AND b.placed_at < %(update_cutoff)s
       AND NOT EXISTS (SELECT 1 FROM notifications_notification n
                       WHERE n.dedupe_key = 'status_update:' || b.line_id || ':'
                             || ((%(today)s::date - (b.placed_at AT TIME ZONE 'UTC')::date) / %(every)s)))
        AS updates_due
"""


def timed_statement(sql: str, params: dict[str, object], *, runs: int = 2) -> dict[str, object]:
    """Run `sql` `runs` times, each in a transaction rolled back afterwards; the best time and its row count."""
    best = None
    rows = None
    for _ in range(runs):
        try:
            with transaction.atomic():
                started = time.perf_counter()
                with connection.cursor() as cursor:
                    cursor.execute(sql, params)
                    result = cursor.fetchall() if cursor.description else cursor.rowcount
                elapsed = time.perf_counter() - started
                raise _Rollback(result, elapsed)
        except _Rollback as rollback:
            rows = rollback.result
            best = rollback.elapsed if best is None else min(best, rollback.elapsed)
    return {"seconds": round(best or 0.0, 4), "result": rows}


class _Rollback(Exception):
    def __init__(self, result: object, elapsed: float) -> None:
        self.result = result
        self.elapsed = elapsed


def vacuum(*tables: str) -> None:
    """Clean up after rolled-back reference runs (dead tuples) and refresh statistics."""
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def scan_params(today: date, *, lead_days: int, offer_days: int, every: int) -> dict[str, object]:
    from datetime import datetime, timedelta
    from datetime import time as dtime

    def start_of(day: date) -> datetime:
        return timezone.make_aware(datetime.combine(day, dtime.min))

    return {
        "today": today,
        "lead": lead_days,
        "offer_cutoff": start_of(today - timedelta(days=offer_days - 1)),
        "update_cutoff": start_of(today - timedelta(days=every - 1)),
        "every": every,
    }
