"""`python -m bench`: create the bench database, generate data, run the scenarios, print a table, write JSON."""

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

from bench.report import render_table, summarize

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ALL_SCENARIOS = ["place", "http", "fill", "recompute", "scan", "admin", "csv"]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", type=int, default=1_000_000, help="open backorders to generate (default 1e6)")
    parser.add_argument(
        "--scenarios", default=",".join(ALL_SCENARIOS), help=f"comma-separated subset of {','.join(ALL_SCENARIOS)}"
    )
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the bench database afterwards (default: drop it)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP scenario (no gunicorn)")
    parser.add_argument("--database", default="bench_backorders", help="the bench's own database (dropped first)")
    parser.add_argument("--postgres", default="postgres://postgres@127.0.0.1:5432", help="server URL, no database")
    parser.add_argument(
        "--redis",
        default="redis://127.0.0.1:6379/13",
        help="broker for the outbox enqueues (a database of the bench's own); '' = none: Celery runs eagerly",
    )
    parser.add_argument("--orders", type=int, default=None, help="orders per placement run (default by scale)")
    parser.add_argument("--cold-skus", type=int, default=1000, help="cold SKUs the placement spreads over")
    parser.add_argument("--http-workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--http-clients", type=int, default=8, help="load generator connections")
    parser.add_argument("--http-seconds", type=float, default=60, help="time bound of the HTTP load")
    parser.add_argument("--place-seconds", type=float, default=180, help="time bound of each placement run")
    parser.add_argument("--pgbench-seconds", type=int, default=10, help="duration of each pgbench run")
    parser.add_argument("--csv-rows", type=int, default=None, help="rows of the CSV import (default by scale)")
    parser.add_argument("--admin-runs", type=int, default=7, help="requests per changelist (after one warm-up)")
    parser.add_argument("--compare", type=Path, help="an earlier JSON (e.g. at scale 1e5) for the peak RSS ratios")
    args = parser.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(ALL_SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.no_http and "http" in args.scenarios:
        args.scenarios.remove("http")
    if args.orders is None:
        args.orders = 10_000 if args.scale >= 100_000 else max(100, min(2_000, args.scale // 5))
    if args.orders < args.cold_skus * 10:  # each cold SKU needs ~10 orders for the 90% allocated / 10% backordered mix
        args.cold_skus = max(10, args.orders // 10)
    if args.csv_rows is None:
        args.csv_rows = 100_000 if args.scale >= 100_000 else max(100, args.scale // 10)
    return args


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.database_url = f"{args.postgres.rstrip('/')}/{args.database}"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": self.database_url,
            "CELERY_BROKER_URL": args.redis,
            "PYTHONPATH": str(ROOT),
        }
        self.results: dict[str, object] = {
            "machine": {
                "cpus": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        }

    # --- processes ---

    def worker(self, name: str, params: dict | None = None, *, background: bool = False):
        command = [PYTHON, "-m", "bench.worker", name, json.dumps(params or {})]
        if background:
            return subprocess.Popen(command, env=self.env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        completed = subprocess.run(command, env=self.env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        if completed.returncode:
            raise RuntimeError(f"bench worker {name} failed (exit {completed.returncode})")
        return json.loads(completed.stdout.strip().splitlines()[-1])

    @staticmethod
    def collect(process: subprocess.Popen) -> dict:
        stdout, _ = process.communicate()
        if process.returncode:
            raise RuntimeError(f"bench worker failed (exit {process.returncode})")
        return json.loads(stdout.strip().splitlines()[-1])

    # --- database ---

    def create_database(self) -> None:
        import psycopg

        (ROOT / "var" / "static").mkdir(parents=True, exist_ok=True)  # whitenoise warns in every worker without it

        with psycopg.connect(f"{self.args.postgres.rstrip('/')}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{self.args.database}"')
        say(f"database {self.args.database} created; migrating")
        subprocess.run([PYTHON, "manage.py", "migrate", "--no-input", "-v", "0"], env=self.env, cwd=ROOT, check=True)

    def drop_database(self) -> None:
        import psycopg
        from django.db import connections

        connections.close_all()
        with psycopg.connect(f"{self.args.postgres.rstrip('/')}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.args.database}" WITH (FORCE)')
        say(f"database {self.args.database} dropped")

    def clear_broker(self) -> None:
        """Delete the bench's own queues (nothing consumes them) from its Redis database."""
        if not self.args.redis:
            return
        try:
            import redis

            client = redis.Redis.from_url(self.args.redis)
            keys = [k for k in client.keys("*bench-backorders*")]
            if keys:
                client.delete(*keys)
        except Exception as exc:  # the figures are in; a broker hiccup at the end is only reported
            say(f"could not clear the bench queues: {exc}")

    def setup_django(self) -> None:
        os.environ.update({k: self.env[k] for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "CELERY_BROKER_URL")})
        import django

        django.setup()

    def check_invariants(self, after: str) -> None:
        from bench.scenarios import invariants

        found = invariants()
        self.results.setdefault("invariants", {})[after] = found
        state = "hold" if not found["violations"] else f"BROKEN: {found['violations']}"
        say(f"invariants after {after}: {state} ({found['seconds']}s)")

    def vacuum_all(self) -> None:
        from django.db import connection

        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        say(f"VACUUM ANALYZE in {time.perf_counter() - started:.0f}s")

    # --- run ---

    def run(self) -> int:
        args = self.args
        self.create_database()
        self.setup_django()
        from bench.generate import generate

        today = date.today()
        started = time.perf_counter()
        layout = generate(scale=args.scale, today=today, say=say)
        self.vacuum_all()
        self.results["layout"] = layout.as_dict()
        self.results["generation_seconds"] = round(time.perf_counter() - started, 1)
        self.check_invariants("generation")
        from bench.scenarios import prepare_users, recompute_check

        check = recompute_check(
            product_skus=["FILL-BIG", "FILL-R-00", "BG-000000", "BG-000001"], today=today.isoformat()
        )
        say(f"generated ETAs re-pegged on the same day: {check['changed']} changed (expected 0)")
        self.results["generation_check"] = check
        self.token = prepare_users()["token"]
        try:
            for scenario in args.scenarios:
                say(f"== scenario {scenario}")
                getattr(self, f"scenario_{scenario}")(layout)
                self.check_invariants(scenario)
        finally:
            self.clear_broker()
            self.results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
            compare = json.loads(args.compare.read_text()) if args.compare else None
            self.results["summary"] = summarize(self.results, compare)
            print(render_table(self.results["summary"]))
            if args.json:
                args.json.write_text(json.dumps(self.results, indent=2, default=str))
                say(f"figures written to {args.json}")
            if not args.keep:
                self.drop_database()
        # A benchmark reports figures; it fails only when something is wrong: a broken invariant or oversold stock.
        broken = any(v["violations"] for v in self.results.get("invariants", {}).values())
        oversold = any(r.get("oversold_units") for r in self.results.get("place", {}).get("runs", {}).values())
        oversold = oversold or bool(self.results.get("http", {}).get("oversold_units"))
        return 1 if broken or oversold else 0

    # --- scenarios ---

    def scenario_place(self, layout) -> None:
        from django.db import connection

        from bench.generate import setup_placement_products
        from bench.reference import pgbench_hot_row
        from bench.scenarios import placement_check

        args = self.args
        settings = connection.settings_dict
        dsn = {
            "host": settings["HOST"] or "127.0.0.1",
            "port": settings["PORT"] or 5432,
            "user": settings["USER"] or "postgres",
            "name": settings["NAME"],
        }
        place: dict[str, object] = {"orders_per_run": args.orders, "cold_skus": args.cold_skus}
        place["pgbench"] = [pgbench_hot_row(dsn=dsn, clients=c, seconds=args.pgbench_seconds) for c in (2, 4)]
        say(f"  pgbench hot row: {place['pgbench']}")
        runs = {}
        for procs in (1, 4):
            for mode in ("service", "bare"):
                for temperature in ("hot", "cold"):
                    tag = f"{mode[0]}{procs}{temperature[0]}"
                    products = setup_placement_products(tag=tag.upper(), orders=args.orders, cold_skus=args.cold_skus)
                    skus = [products["hot"]] if temperature == "hot" else products["cold"]
                    start_at = time.time() + 3.0
                    processes = [
                        self.worker(
                            "place",
                            {
                                "mode": mode,
                                "skus": skus,
                                "total": args.orders,
                                "index": i,
                                "procs": procs,
                                "start_at": start_at,
                                "max_seconds": args.place_seconds,
                                "tag": tag,
                            },
                            background=True,
                        )
                        for i in range(procs)
                    ]
                    parts = [self.collect(p) for p in processes]
                    run = _merge_place(parts, start_at)
                    run.update(placement_check(skus=skus))
                    run["expected_allocated"] = min(
                        run["orders"],
                        products["hot_stock"] if temperature == "hot" else products["cold_stock"] * len(skus),
                    )
                    runs[f"{mode}_{temperature}_{procs}"] = run
                    say(
                        f"  {mode} {temperature} x{procs}: {run['orders_per_s']} orders/s, p50 {run['p50_ms']} ms, "
                        f"p99 {run['p99_ms']} ms, oversold {run['oversold_units']}, errors {run['error_count']}, "
                        f"peak RSS {run['rss_peak_mb']} MB"
                    )
        place["runs"] = runs
        self.results["place"] = place

    def scenario_http(self, layout) -> None:
        from bench.generate import setup_placement_products
        from bench.scenarios import placement_check

        args = self.args
        products = setup_placement_products(tag="HTTP", orders=args.orders, cold_skus=args.cold_skus)
        port = _free_port()
        # As the Procfile runs it (sync workers, the app loaded once before the workers fork, connections kept
        # by the settings' CONN_MAX_AGE), without the access log. Preloading also means every worker is ready
        # when /healthz first answers, so no worker is still importing Django while the load is measured.
        command = [
            str(Path(PYTHON).parent / "gunicorn"),
            "config.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.http_workers),
            "--preload",
            "--log-level",
            "warning",
        ]
        server = subprocess.Popen(command, env=self.env, cwd=ROOT)
        try:
            _wait_http(port)
            load = self.worker(
                "http_load",
                {
                    "port": port,
                    "token": self.token,
                    "skus": products["cold"],
                    "total": args.orders,
                    "clients": args.http_clients,
                    "max_seconds": args.http_seconds,
                    "tag": "http",
                },
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
        run = _merge_place(
            [{**load, "orders": load["created"], "error_count": load["requests"] - load["created"]}], load["began"]
        )
        run.update(placement_check(skus=products["cold"]))
        run.update(
            {
                "workers": args.http_workers,
                "clients": args.http_clients,
                "statuses": load["statuses"],
                "errors": load["errors"],
            }
        )
        self.results["http"] = run
        say(
            f"  HTTP: {run['orders_per_s']} orders/s, p50 {run['p50_ms']} ms, p99 {run['p99_ms']} ms, "
            f"statuses {load['statuses']}"
        )

    def scenario_fill(self, layout) -> None:
        big = self.worker("fill_big")
        say(
            f"  one receipt: {big['lines_filled']} lines in {big['seconds']}s ({big['lines_per_s']}/s; engine "
            f"{big['engine_lines_per_s']}/s); {big['queries']} queries; reference {big['reference_lines_per_s']}/s; "
            f"peak RSS {big['rss_peak_mb']} MB"
        )
        receipts = self.worker("fill_receipts")
        say(
            f"  {receipts['receipts']} receipts: {receipts['lines_filled']} lines in {receipts['seconds']}s "
            f"({receipts['lines_per_s']}/s); p50 {receipts['receipt_p50_ms']} ms; queries "
            f"{receipts['queries_per_receipt']}; reference {receipts['reference_lines_per_s']}/s"
        )
        self.results["fill"] = {"one_receipt": big, "receipts": receipts}

    def scenario_recompute(self, layout) -> None:
        from bench.scenarios import day_after

        result = self.worker("recompute", {"as_of": day_after(layout.today)})
        say(
            f"  recompute_etas: {result['waiting_lines']} lines in {result['seconds']}s ({result['rows_per_s']}/s); "
            f"reference {result['reference_rows_per_s']}/s; peak RSS {result['rss_peak_mb']} MB"
        )
        self.results["recompute"] = result

    def scenario_scan(self, layout) -> None:
        result = self.worker("scan", {"as_of": layout.today})
        say(
            f"  scan_backorders: {result['waiting_lines']} lines in {result['seconds']}s ({result['rows_per_s']}/s); "
            f"reference {result['reference_rows_per_s']}/s; peak RSS {result['rss_peak_mb']} MB"
        )
        self.results["scan"] = result

    def scenario_admin(self, layout) -> None:
        result = self.worker("admin_changelists", {"runs": self.args.admin_runs})
        say(f"  changelists: {result}")
        self.results["admin"] = result

    def scenario_csv(self, layout) -> None:
        result = self.worker("csv_import", {"rows": self.args.csv_rows})
        say(f"  CSV import: {result['rows']} rows in {result['seconds']}s; peak RSS {result['rss_peak_mb']} MB")
        self.results["csv"] = result


def _merge_place(parts: list[dict], start_at: float) -> dict[str, object]:
    from bench.measure import percentile

    latencies = [x for part in parts for x in part["latencies_ms"]]
    orders = sum(part["orders"] for part in parts)
    ended = max(part["ended"] for part in parts)
    began = min(part["began"] for part in parts)
    seconds = max(ended - began, 1e-9)
    return {
        "processes": len(parts),
        "orders": orders,
        "error_count": sum(part.get("error_count", 0) for part in parts),
        "errors": [e for part in parts for e in part.get("errors", [])][:5],
        "seconds": round(seconds, 2),
        "orders_per_s": round(orders / seconds, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "rss_peak_mb": max((part.get("rss_peak_mb", 0) for part in parts), default=0),
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(port: int, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"gunicorn did not answer on port {port} within {timeout}s")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return Bench(args).run()
