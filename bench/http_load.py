"""The HTTP load generator: `clients` threads POST one-unit orders to /api/v1/orders/ on loopback.

Bounded in count (`total` orders) and time (`max_seconds`). Needs no Django. It shares the machine's cores with
the server it measures, so it costs as little as it can: each thread speaks HTTP/1.1 on a plain socket (request
bytes formatted from a template, the response read by its Content-Length), keeps its connection while the
server does, and reconnects when the server closes it (gunicorn's sync workers close after every response).
Every order is a new order of a new customer, as before (the customer email carries the order's index).
"""

import json
import socket
import threading
import time
import uuid

BODY = '{"customer": {"email": "%s-%d@bench.example", "name": "Bench %d"}, "lines": [{"sku": %s, "quantity": 1}]}'


class _Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1:port (reopened when the server closes it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None
        self.buffer = b""

    def request(self, data: bytes) -> tuple[int, bytes]:
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.buffer = b""
        self.sock.sendall(data)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._receive()
        head, self.buffer = self.buffer[:end].decode("latin-1"), self.buffer[end + 4 :]
        status_line, *header_lines = head.split("\r\n")
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":  # e.g. an error page without a length
            body = self._chunked()
        else:
            body = self._exactly(int(headers.get("content-length", "0")))
        if headers.get("connection", "").lower() == "close":
            self.close()
        return int(status_line.split(" ", 2)[1]), body

    def _exactly(self, length: int) -> bytes:
        while len(self.buffer) < length:
            self._receive()
        data, self.buffer = self.buffer[:length], self.buffer[length:]
        return data

    def _chunked(self) -> bytes:
        chunks = []
        while True:
            while (end := self.buffer.find(b"\r\n")) < 0:
                self._receive()
            size = int(self.buffer[:end].split(b";")[0], 16)
            self.buffer = self.buffer[end + 2 :]
            chunks.append(self._exactly(size + 2)[:size])  # the chunk and its CRLF
            if size == 0:  # no trailers are sent to us: the last chunk's CRLF ends the body
                return b"".join(chunks)

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-response")
        self.buffer += chunk

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock = None


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
    head = (
        f"POST /api/v1/orders/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Token {token}\r\n"
        "Content-Type: application/json\r\nAccept: application/json\r\n"
    )
    sku_json = [json.dumps(sku) for sku in skus]
    tag = json.dumps(tag)[1:-1]

    def claim() -> int | None:
        with lock:
            if next_index[0] >= total or time.time() > deadline[0]:
                return None
            next_index[0] += 1
            return next_index[0] - 1

    def client() -> None:
        connection = _Connection(port)
        while (i := claim()) is not None:
            body = (BODY % (tag, i, i, sku_json[i % len(sku_json)])).encode()
            extra = f"Idempotency-Key: {uuid.uuid4()}\r\n" if idempotency else ""
            data = f"{head}{extra}Content-Length: {len(body)}\r\n\r\n".encode() + body
            started = time.perf_counter()
            try:
                status, _ = connection.request(data)
            except (OSError, ValueError, IndexError) as exc:
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
        "cpu_seconds": round(time.process_time(), 3),
        "latencies_ms": [round(x, 3) for x in latencies],
    }
