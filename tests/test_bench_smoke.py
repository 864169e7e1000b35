"""The benchmark harness keeps working: a tiny run of `python -m bench` (fill and scan) on a database of its own.

Figures are not checked (a benchmark prints times; tests assert only what is deterministic): the run must
finish, every invariant must hold after generation and after each scenario, and the fills must serve
exactly the lines the receipts cover.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent


def _server_url() -> str:
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    return f"postgres://{user}{password}@{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}"


def test_bench_runs_fill_and_scan_at_a_tiny_scale(tmp_path):
    out = tmp_path / "bench.json"
    command = [
        sys.executable, "-m", "bench", "--scale", "2000", "--scenarios", "fill,scan", "--no-http",
        "--database", f"bench_smoke_{os.getpid()}", "--postgres", _server_url(), "--redis", "", "--json", str(out),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL")}
    completed = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)

    assert completed.returncode == 0, completed.stderr[-3000:]
    figures = json.loads(out.read_text())
    assert set(figures["invariants"]) == {"generation", "fill", "scan"}
    assert all(check["violations"] == [] for check in figures["invariants"].values())
    assert figures["generation_check"]["changed"] == 0
    layout = figures["layout"]
    big, receipts = figures["fill"]["one_receipt"], figures["fill"]["receipts"]
    assert big["lines_filled"] == big["waiting_lines"] == layout["big_fill_lines"] == big["reference_lines"]
    assert receipts["lines_filled"] == layout["receipts"] * layout["lines_per_receipt"]
    assert len(receipts["queries_per_receipt"]) == 1
    assert figures["scan"]["waiting_lines"] > 0
    assert "scenario" in completed.stdout and "3 fill" in completed.stdout
