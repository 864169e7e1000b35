"""Small measuring tools shared by the scenarios: query counting, timers around functions, RSS, percentiles."""

import resource
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import connection


class QueryCounter:
    """A connection execute wrapper that counts statements (without keeping their SQL)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)


@contextmanager
def count_queries() -> Iterator[QueryCounter]:
    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        yield counter


@dataclass
class Timer:
    """Accumulated wall time and calls of one patched function."""

    seconds: float = 0.0
    calls: int = 0


@dataclass
class Timers:
    by_name: dict[str, Timer] = field(default_factory=dict)

    def reset(self) -> None:
        for timer in self.by_name.values():
            timer.seconds, timer.calls = 0.0, 0

    def as_dict(self) -> dict[str, dict[str, float]]:
        return {name: {"seconds": round(t.seconds, 3), "calls": t.calls} for name, t in self.by_name.items()}


def time_calls(timers: Timers, module: Any, name: str, label: str | None = None) -> None:
    """Replace module.name by a wrapper that adds its wall time to timers[label] (nested calls counted once)."""
    original: Callable = getattr(module, name)
    timer = timers.by_name.setdefault(label or name, Timer())
    depth = [0]

    def wrapper(*args, **kwargs):
        if depth[0]:
            return original(*args, **kwargs)
        depth[0] += 1
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            timer.seconds += time.perf_counter() - started
            timer.calls += 1
            depth[0] -= 1

    setattr(module, name, wrapper)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return round(pages * resource.getpagesize() / 1024 / 1024, 1)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[max(0, min(98, round(p) - 1))]
