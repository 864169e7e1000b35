"""The bench's HTTP load generator (bench/http_load.py) against a small HTTP server on loopback: every order is a
new customer's, every request is well formed and counted, whether the server keeps the connection or closes it,
and whatever the body's framing (Content-Length or chunked)."""

import json
import socketserver
import threading

import pytest

from bench.http_load import run


@pytest.fixture
def server():
    """A plain HTTP/1.1 server on loopback recording each order: 201 with a Content-Length, every 5th a 409 with a
    chunked body, every 7th closing the connection after its response."""
    received: list[dict] = []
    lock = threading.Lock()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while request_line := self.rfile.readline():
                headers = {}
                while (line := self.rfile.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = json.loads(self.rfile.read(int(headers["content-length"])))
                with lock:
                    received.append({"request": request_line.decode().strip(), "auth": headers["authorization"]})
                    received[-1].update(body)
                    count = len(received)
                payload = json.dumps({"number": f"SO-{count}"}).encode()
                close = count % 7 == 0
                head = f"HTTP/1.1 201 Created\r\nContent-Length: {len(payload)}\r\n"
                if count % 5 == 0:
                    head = "HTTP/1.1 409 Conflict\r\nTransfer-Encoding: chunked\r\n"
                    payload = f"{len(payload):x}\r\n".encode() + payload + b"\r\n0\r\n\r\n"
                self.wfile.write((head + ("Connection: close\r\n" if close else "") + "\r\n").encode() + payload)
                if close:
                    return

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True

    httpd = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1], received
    httpd.shutdown()
    httpd.server_close()


def test_the_load_generator_posts_one_new_customer_order_per_request(server):
    port, received = server

    result = run(port=port, token="abc", skus=["MUG", 'KET"TLE'], total=40, clients=3, max_seconds=30, tag="t")

    assert result["requests"] == len(received) == 40
    assert result["statuses"] == {"201": 32, "409": 8}
    assert (result["created"], result["errors"]) == (32, [])
    assert {r["request"] for r in received} == {"POST /api/v1/orders/ HTTP/1.1"}
    assert {r["auth"] for r in received} == {"Token abc"}
    emails = sorted(r["customer"]["email"] for r in received)
    assert emails == sorted(f"t-{i}@bench.example" for i in range(40))
    assert sorted(json.dumps(r["lines"]) for r in received) == sorted(
        json.dumps([{"sku": ["MUG", 'KET"TLE'][i % 2], "quantity": 1}]) for i in range(40)
    )
    assert len(result["latencies_ms"]) == 40
