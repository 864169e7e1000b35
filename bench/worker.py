"""One scenario in a fresh process: `python -m bench.worker <scenario> '<json params>'`.

Prints progress on stderr and one JSON object (the figures, with this process's peak RSS) as the last line
of stdout. Started by bench.cli with DJANGO_SETTINGS_MODULE=bench.settings and the bench's DATABASE_URL.
"""

import json
import sys
import time


def main(argv: list[str]) -> int:
    name, params = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    if name == "http_load":  # the load generator needs no Django
        from bench.http_load import run

        result = run(**params)
    else:
        import django

        django.setup()
        from bench import scenarios
        from bench.measure import current_rss_mb, peak_rss_mb

        baseline = current_rss_mb()
        started = time.perf_counter()
        result = getattr(scenarios, name)(**params)
        result.setdefault("wall_seconds", round(time.perf_counter() - started, 2))
        result["rss_baseline_mb"] = baseline
        result["rss_peak_mb"] = peak_rss_mb()
    sys.stdout.write("\n" + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
