"""The summary table: one row per figure, with its reference, the ratio and the issue's target."""

from collections.abc import Iterable

RSS_LIMIT_MB = 300
RSS_GROWTH = 1.5


def _row(scenario: str, figure: str, value, reference=None, ratio=None, target: str = "", met=None) -> dict:
    return {
        "scenario": scenario,
        "figure": figure,
        "value": value,
        "reference": reference,
        "ratio": ratio,
        "target": target,
        "met": met,
    }


def _ratio(value, reference) -> float | None:
    if not value or not reference:
        return None
    return round(value / reference, 3)


def _at_least(ratio: float | None, bound: float) -> bool | None:
    return None if ratio is None else ratio >= bound


def summarize(results: dict, compare: dict | None = None) -> list[dict]:
    rows: list[dict] = []
    place = results.get("place")
    if place:
        ceiling = {p["clients"]: p["tps"] for p in place["pgbench"]}
        rows.append(_row("1 place", "pgbench hot row, 2 / 4 clients (tx/s)", f"{ceiling.get(2)} / {ceiling.get(4)}"))
        runs = place["runs"]
        for key, run in runs.items():
            mode, temperature, procs = key.split("_")
            label = f"{'service' if mode == 'service' else 'bare ORM'} {temperature} x{procs}"
            rows.append(
                _row(
                    "1 place",
                    f"{label}: orders/s (p50 / p99 ms)",
                    f"{run['orders_per_s']} ({run['p50_ms']} / {run['p99_ms']})",
                )
            )
        for procs in (1, 4):
            hot, cold = runs.get(f"service_hot_{procs}"), runs.get(f"service_cold_{procs}")
            if hot and cold:
                ratio = _ratio(hot["orders_per_s"], cold["orders_per_s"])
                rows.append(
                    _row(
                        "1 place",
                        f"service hot/cold x{procs}",
                        hot["orders_per_s"],
                        cold["orders_per_s"],
                        ratio,
                        ">= 0.90" if procs == 4 else "",
                        _at_least(ratio, 0.9) if procs == 4 else None,
                    )
                )
        for temperature in ("hot", "cold"):
            service, bare = runs.get(f"service_{temperature}_4"), runs.get(f"bare_{temperature}_4")
            if service and bare:
                ratio = _ratio(service["orders_per_s"], bare["orders_per_s"])
                rows.append(
                    _row(
                        "1 place",
                        f"service/bare ORM {temperature} x4",
                        service["orders_per_s"],
                        bare["orders_per_s"],
                        ratio,
                        ">= 0.80",
                        _at_least(ratio, 0.8),
                    )
                )
        hot4 = runs.get("service_hot_4")
        if hot4 and ceiling.get(4):
            rows.append(
                _row(
                    "1 place",
                    "service hot x4 / pgbench ceiling x4",
                    hot4["orders_per_s"],
                    ceiling[4],
                    _ratio(hot4["orders_per_s"], ceiling[4]),
                )
            )
        oversold = sum(run["oversold_units"] for run in runs.values())
        exact = all(run["allocated"] == run["expected_allocated"] for run in runs.values())
        rows.append(
            _row(
                "1 place",
                "oversold units (all runs); allocated == min(orders, stock)",
                f"{oversold}; {exact}",
                target="0; True",
                met=oversold == 0 and exact,
            )
        )
        rows.append(
            _row(
                "1 place",
                "errors (all runs)",
                sum(run["error_count"] for run in runs.values()),
                target="0",
                met=all(run["error_count"] == 0 for run in runs.values()),
            )
        )
    http = results.get("http")
    if http:
        base = place["runs"].get("service_cold_4") if place else None
        ratio = _ratio(http["orders_per_s"], base["orders_per_s"]) if base else None
        rows.append(
            _row(
                "2 http",
                f"gunicorn x{http['workers']}, {http['clients']} clients: orders/s (p50 / p99 ms)",
                f"{http['orders_per_s']} ({http['p50_ms']} / {http['p99_ms']})",
                base["orders_per_s"] if base else None,
                ratio,
                ">= 0.60",
                _at_least(ratio, 0.6),
            )
        )
        rows.append(
            _row(
                "2 http",
                "oversold units; non-201 responses",
                f"{http['oversold_units']}; {http['error_count']}",
                target="0; 0",
                met=http["oversold_units"] == 0 and http["error_count"] == 0,
            )
        )
    fill = results.get("fill")
    if fill:
        big = fill["one_receipt"]
        ratio = _ratio(big["lines_per_s"], big["reference_lines_per_s"])
        rows.append(
            _row(
                "3 fill",
                f"one receipt, {big['lines_filled']} lines: lines/s (all in)",
                big["lines_per_s"],
                big["reference_lines_per_s"],
                ratio,
                ">= 0.50",
                _at_least(ratio, 0.5),
            )
        )
        engine_ratio = _ratio(big["engine_lines_per_s"], big["reference_lines_per_s"])
        rows.append(
            _row(
                "3 fill",
                "  the same without writing the emails (insert + enqueue; the reference writes them)",
                big["engine_lines_per_s"],
                big["reference_lines_per_s"],
                engine_ratio,
            )
        )
        rows.append(_row("3 fill", "  queries in that receipt", big["queries"]))
        many = fill["receipts"]
        ratio = _ratio(many["lines_per_s"], many["reference_lines_per_s"])
        rows.append(
            _row(
                "3 fill",
                f"{many['receipts']} receipts: lines/s (receipt p50 ms)",
                f"{many['lines_per_s']} ({many['receipt_p50_ms']})",
                many["reference_lines_per_s"],
                ratio,
                ">= 0.50",
                _at_least(ratio, 0.5),
            )
        )
        engine_ratio = _ratio(many["engine_lines_per_s"], many["reference_lines_per_s"])
        rows.append(
            _row(
                "3 fill",
                "  the same without the emails",
                many["engine_lines_per_s"],
                many["reference_lines_per_s"],
                engine_ratio,
            )
        )
        rows.append(
            _row(
                "3 fill",
                "  queries per receipt",
                many["queries_per_receipt"],
                target="constant",
                met=len(many["queries_per_receipt"]) == 1,
            )
        )
    for key, label in (("recompute", "recompute_etas"), ("scan", "scan_backorders")):
        result = results.get(key)
        if result:
            ratio = _ratio(result["rows_per_s"], result["reference_rows_per_s"])
            rows.append(
                _row(
                    f"4 {key}",
                    f"{label}, {result['waiting_lines']} open lines: rows/s",
                    result["rows_per_s"],
                    result["reference_rows_per_s"],
                    ratio,
                    ">= 0.50",
                    _at_least(ratio, 0.5),
                )
            )
            timers = result.get("timers", {})
            for name, timer in timers.items():
                rows.append(_row(f"4 {key}", f"  of which {name}: s ({timer['calls']} calls)", timer["seconds"]))
            counts = result.get("counts")
            if counts:
                engine, statement = zip(*counts.values(), strict=True)
                rows.append(
                    _row(
                        f"4 {key}",
                        "  clocks started/closed, actions, offers, updates: engine (statement)",
                        "/".join(map(str, engine)),
                        "/".join(map(str, statement)),
                        target="equal",
                        met=engine == statement,
                    )
                )
            if "notify_eta_changes" in timers:
                engine = result["seconds"] - timers["notify_eta_changes"]["seconds"]
                rate = round(result["waiting_lines"] / engine, 1) if engine > 0 else None
                rows.append(
                    _row(
                        f"4 {key}",
                        "  the same without notify_eta_changes",
                        rate,
                        result["reference_rows_per_s"],
                        _ratio(rate, result["reference_rows_per_s"]),
                    )
                )
    admin = results.get("admin")
    if admin:
        for name in ("orders", "backorders"):
            page = admin.get(name)
            if page and "p50_ms" in page:
                rows.append(
                    _row(
                        "5 admin",
                        f"{name} changelist, {page['rows']} rows: p50 ms (queries)",
                        f"{page['p50_ms']} ({'/'.join(map(str, page['queries']))})",
                        target="< 300 ms, constant",
                        met=page["p50_ms"] < 300 and len(page["queries"]) == 1 and page["status"] == 200,
                    )
                )
    rows += _memory_rows(results, compare)
    return rows


def _peaks(results: dict) -> dict[str, float]:
    peaks = {}
    if results.get("scan"):
        peaks["scan_backorders"] = results["scan"]["rss_peak_mb"]
    if results.get("recompute"):
        peaks["recompute_etas"] = results["recompute"]["rss_peak_mb"]
    if results.get("fill"):
        peaks["fill (one receipt)"] = results["fill"]["one_receipt"]["rss_peak_mb"]
        peaks["fill (receipts)"] = results["fill"]["receipts"]["rss_peak_mb"]
    if results.get("csv"):
        peaks[f"CSV import ({results['csv']['rows']} rows)"] = results["csv"]["rss_peak_mb"]
    if results.get("place"):
        peaks["placement process"] = max(run["rss_peak_mb"] for run in results["place"]["runs"].values())
    return peaks


def _memory_rows(results: dict, compare: dict | None) -> Iterable[dict]:
    before = _peaks(compare) if compare else {}
    base_scale = compare["args"]["scale"] if compare else None
    for name, peak in _peaks(results).items():
        ratio = _ratio(peak, before.get(name)) if before.get(name) else None
        met = peak < RSS_LIMIT_MB and (ratio is None or ratio <= RSS_GROWTH)
        yield _row(
            "memory",
            f"peak RSS MB: {name}",
            peak,
            f"{before[name]} at {base_scale}" if before.get(name) else None,
            ratio,
            f"< {RSS_LIMIT_MB} MB" + (f", <= {RSS_GROWTH}x" if before else ""),
            met,
        )


def render_table(rows: list[dict]) -> str:
    headers = ["scenario", "figure", "value", "reference", "ratio", "target", "met"]

    def cell(row: dict, key: str) -> str:
        value = row.get(key)
        if value is None:
            return ""
        if key == "met":
            return "yes" if value else "NO"
        return str(value)

    table = [headers] + [[cell(row, key) for key in headers] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(headers))]
    lines = [" | ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)) for line in table]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def render_markdown(rows: list[dict]) -> str:
    headers = ["scenario", "figure", "value", "reference", "ratio", "target", "met"]
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        cells = []
        for key in headers:
            value = row.get(key)
            cells.append("" if value is None else ("yes" if value else "**no**") if key == "met" else str(value))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)
