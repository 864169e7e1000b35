"""Run callables from many threads at once against the real database (each thread its own connection)."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from django.db import connection


def run_concurrently(tasks: list[Callable[[], object]], threads: int) -> list[object]:
    """Run every task on `threads` threads whose first tasks start together (a barrier).

    Returns each task's result, or the exception it raised. Each task closes its thread's connection.
    """
    barrier = threading.Barrier(min(threads, len(tasks)))
    state = threading.local()

    def wrap(task: Callable[[], object]) -> object:
        try:
            if not getattr(state, "started", False):
                state.started = True
                barrier.wait(timeout=60)
            return task()
        except Exception as exc:  # the test inspects what each task raised
            return exc
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(wrap, tasks))
