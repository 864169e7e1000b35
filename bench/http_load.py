"""The HTTP load generator: `clients` threads POST one-unit orders to /api/v1/orders/ on loopback.

Bounded in count (`total` orders) and time (`max_seconds`). Needs no Django: only http.client and json.
"""

import http.client
import json
import threading
import time
import uuid


def run(
    *,
    port: int,
    token: str,
    skus: list[str],
    total: int,
    clients: int,
    max_seconds: float,
    tag: str,
    idempotency: bool = False,
) -> dict[str, object]:
    lock = threading.Lock()
    next_index = [0]
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    deadline = [0.0]

    def claim() -> int | None:
        with lock:
            if next_index[0] >= total or time.time() > deadline[0]:
                return None
            next_index[0] += 1
            return next_index[0] - 1

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (i := claim()) is not None:
            body = json.dumps(
                {
                    "customer": {"email": f"{tag}-{i}@bench.example", "name": f"Bench {i}"},
                    "lines": [{"sku": skus[i % len(skus)], "quantity": 1}],
                }
            )
            headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
            if idempotency:
                headers["Idempotency-Key"] = str(uuid.uuid4())
            started = time.perf_counter()
            try:
                connection.request("POST", "/api/v1/orders/", body=body, headers=headers)
                response = connection.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                status = 0
                with lock:
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[status] = statuses.get(status, 0) + 1
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    began = time.time()
    deadline[0] = began + max_seconds
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ended = time.time()
    return {
        "requests": len(latencies),
        "created": statuses.get(201, 0),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": errors[:5],
        "began": began,
        "ended": ended,
        "latencies_ms": [round(x, 3) for x in latencies],
    }
