"""The references: what the database alone can do, measured in the same run, so the engines' figures are ratios.

- the hot-row ceiling: pgbench, a locked SELECT then an UPDATE of one row, 2 and 4 clients;
- a bare ORM order transaction: only the minimal writes, no service;
- one SQL statement each for a FIFO fill (with its outbox rows, as the engine writes them, and the received PO's
  line and status), an ETA re-peg and the compliance scan's decisions.

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
), po_line AS (
    -- the PO's bookkeeping every receipt does: the line's received units, the PO's status (from its lines as written)
    UPDATE inventory_purchaseorderline SET received = received + %(units)s WHERE id = %(po_line)s
    RETURNING purchase_order_id, received = quantity AS complete
), po AS (
    UPDATE inventory_purchaseorder p
    SET status = CASE WHEN l.complete AND NOT EXISTS (
                          SELECT 1 FROM inventory_purchaseorderline x
                          WHERE x.purchase_order_id = p.id AND x.id <> %(po_line)s AND x.received < x.quantity)
                      THEN 'received' ELSE 'partially_received' END
    FROM po_line l WHERE p.id = l.purchase_order_id
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
WITH unclocked AS (
    SELECT l.id AS line_id, o.ship_by AS agreed, (o.placed_at AT TIME ZONE 'UTC')::date AS placed_on,
           o.credit_applied, %(exempt_rule)s AND (o.cash_on_delivery OR p.ftc_exempt) AS exempt
    FROM orders_orderline l
    JOIN orders_salesorder o ON o.id = l.order_id
    JOIN inventory_product p ON p.id = l.product_id
    WHERE l.backordered > 0 AND NOT EXISTS (SELECT 1 FROM backorders_complianceclock c WHERE c.line_id = l.id)
), started AS (
    -- 1. a clock for every waiting line without one (T from the order), with its 'clock started' event
    INSERT INTO backorders_complianceclock (profile, state, ship_by, revised_date, notices_sent, last_notice_on,
        consent, consent_deadline, indefinite_consent, cancelled_on, refund_due_by, refund_units, created_at,
        updated_at, line_id)
    SELECT %(profile)s, CASE WHEN exempt THEN 'exempt' ELSE 'open' END,
           coalesce(agreed, placed_on + CASE WHEN credit_applied THEN %(credit_ship_days)s ELSE %(ship_days)s END),
           NULL, 0, NULL, 'none', NULL, false, NULL, NULL, 0, now(), now(), line_id
    FROM unclocked
    ON CONFLICT (line_id) DO NOTHING
    RETURNING line_id, state, ship_by
), started_events AS (
    INSERT INTO backorders_complianceevent (kind, "on", channel, ip_address, details, dedupe_key, created_at, line_id)
    SELECT 'clock_started', %(today)s, 'system', NULL,
           jsonb_build_object('ship_by', ship_by::text, 'profile', %(profile)s, 'exempt', state = 'exempt'),
           'clock:' || line_id, now(), line_id
    FROM started
    ON CONFLICT (dedupe_key) DO NOTHING
), shipped_events AS (
    -- 2. every shipment of a clocked line on its timeline, once
    INSERT INTO backorders_complianceevent (kind, "on", channel, ip_address, details, dedupe_key, created_at, line_id)
    SELECT 'shipped', (s.shipped_at AT TIME ZONE %(tz)s)::date, 'system', NULL,
           jsonb_build_object('units', sl.quantity, 'shipment', sl.shipment_id), 'shipped:' || sl.id, now(), sl.line_id
    FROM orders_shipmentline sl JOIN orders_shipment s ON s.id = sl.shipment_id
    WHERE s.shipped_at < %(day_end)s
      AND (EXISTS (SELECT 1 FROM backorders_complianceclock c WHERE c.line_id = sl.line_id)
           OR sl.line_id IN (SELECT line_id FROM started))
      AND NOT EXISTS (SELECT 1 FROM backorders_complianceevent e WHERE e.dedupe_key = 'shipped:' || sl.id)
    ON CONFLICT (dedupe_key) DO NOTHING
), closed AS (
    -- 3. clocks whose line has nothing left to ship
    UPDATE backorders_complianceclock c SET state = 'shipped'
    FROM orders_orderline l
    WHERE l.id = c.line_id AND c.state = 'open' AND l.backordered = 0 AND l.allocated = 0
    RETURNING c.id
), clocks AS (
    SELECT line_id, ship_by, revised_date, notices_sent, consent, consent_deadline, indefinite_consent
    FROM backorders_complianceclock WHERE state = 'open'
    UNION ALL
    SELECT line_id, ship_by, NULL, 0, 'none', NULL, false FROM started WHERE state = 'open'
), decisions AS (
    -- 4. what is due on each open clock with units waiting (us_ftc, the bench's profile)
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
    FROM clocks c
    JOIN orders_orderline l ON l.id = c.line_id
    LEFT JOIN backorders_backorder b ON b.line_id = l.id
    WHERE l.backordered > 0
), offers AS (
    -- 5. cancellation offers (waited the policy's days, or no ETA) and status updates (every N days), stored
    --    unrendered with the facts the sender renders them from, as the engine stores them
    INSERT INTO notifications_notification (kind, status, customer_id, to_email, order_id, line_id, dedupe_key,
        subject, body_text, body_html, attempts, last_error, scheduled_for, data, rendered, created_at)
    SELECT 'cancellation_offer', 'pending', o.customer_id, cu.email, l.order_id, b.line_id,
           'cancellation_offer:' || b.line_id, '', '', '', 0, '', now(),
           jsonb_build_object('days_waiting', %(today)s::date - (b.placed_at AT TIME ZONE 'UTC')::date,
                              'no_eta', b.eta IS NULL),
           false, now()
    FROM backorders_backorder b
    JOIN orders_orderline l ON l.id = b.line_id
    JOIN orders_salesorder o ON o.id = l.order_id
    JOIN orders_customer cu ON cu.id = o.customer_id
    WHERE b.status = 'waiting' AND b.placed_at < %(day_end)s AND (b.placed_at < %(offer_cutoff)s OR b.eta IS NULL)
      AND NOT EXISTS (SELECT 1 FROM notifications_notification n
                      WHERE n.line_id = b.line_id AND n.kind = 'cancellation_offer')
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
), updates AS (
    INSERT INTO notifications_notification (kind, status, customer_id, to_email, order_id, line_id, dedupe_key,
        subject, body_text, body_html, attempts, last_error, scheduled_for, data, rendered, created_at)
    SELECT 'status_update', 'pending', o.customer_id, cu.email, l.order_id, b.line_id, d.key, '', '', '', 0, '',
           now(), jsonb_build_object('days_waiting', d.days), false, now()
    FROM backorders_backorder b
    CROSS JOIN LATERAL (
        SELECT %(today)s::date - (b.placed_at AT TIME ZONE 'UTC')::date AS days,
               'status_update:' || b.line_id || ':'
               || ((%(today)s::date - (b.placed_at AT TIME ZONE 'UTC')::date) / %(every)s) AS key) d
    JOIN orders_orderline l ON l.id = b.line_id
    JOIN orders_salesorder o ON o.id = l.order_id
    JOIN orders_customer cu ON cu.id = o.customer_id
    WHERE %(updates_on)s AND b.status = 'waiting' AND b.placed_at < %(update_cutoff)s
      AND NOT EXISTS (SELECT 1 FROM notifications_notification n WHERE n.dedupe_key = d.key)
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM started) AS clocks_started,
    (SELECT count(*) FROM closed) AS clocks_closed,
    (SELECT count(*) FROM decisions WHERE action <> 'none') AS decisions,
    (SELECT count(*) FROM offers) AS offers_written,
    (SELECT count(*) FROM updates) AS updates_written
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


def scan_params(today: date, *, policy) -> dict[str, object]:
    """SCAN_SQL's parameters for `policy` (a BackorderPolicy) on business day `today`; cutoffs are the starts of
    days in the current time zone, as the engine's `placed_at__date` lookups read them."""
    from datetime import datetime, timedelta
    from datetime import time as dtime

    def start_of(day: date) -> datetime:
        return timezone.make_aware(datetime.combine(day, dtime.min))

    us_ftc = policy.compliance_profile == "us_ftc"
    every = policy.status_update_days
    return {
        "today": today,
        "tz": timezone.get_current_timezone_name(),
        "day_end": start_of(today + timedelta(days=1)),
        "lead": policy.notice_lead_days,
        "profile": policy.compliance_profile,
        "exempt_rule": us_ftc,
        "ship_days": policy.default_ship_days if us_ftc else policy.eu_delivery_days,
        "credit_ship_days": policy.credit_ship_days if us_ftc else policy.eu_delivery_days,
        "offer_cutoff": start_of(today - timedelta(days=policy.cancellation_offer_days - 1)),
        "update_cutoff": start_of(today - timedelta(days=every - 1)) if every else start_of(today),
        "updates_on": bool(every),
        "every": every or 1,
    }
