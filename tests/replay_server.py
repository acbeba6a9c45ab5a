"""A replay server for the ClinicalTrials.gov API v2: real HTTP on 127.0.0.1, recorded pages, scripted faults.

A *cassette* (``tests/fixtures/fetch/*.json``) holds the request parameters of one listing and its pages,
each keyed by the ``pageToken`` that asks for it (``null`` for the first page).  The server answers like
the API: 400 for parameters that differ from the recording or an unknown token, ``totalCount`` only when
``countTotal=true``.  Faults are queued per token and consumed one per request::

    server.script(token, Fault("status", 429, {"Retry-After": "1"}), Fault("truncate"))

kinds: ``status`` (answer that status), ``truncate`` (200 with half the body: invalid JSON), ``short``
(promise the whole body in Content-Length, send half, close: a broken transfer) and ``delay`` (wait
``seconds`` first, then answer normally).  Every request is logged in :attr:`ReplayServer.hits`.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "fetch"


def load_cassette(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Fault:
    kind: str  # status | truncate | short | delay
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


@dataclass(frozen=True)
class Hit:
    at: float  # time.monotonic() when the request arrived
    token: str | None
    params: dict[str, str]
    answer: str  # "200", "429", "truncate", "short", "delay+200", "400"


class ReplayServer:
    """Serves one cassette on an ephemeral port of 127.0.0.1 from a background thread."""

    def __init__(self, cassette: dict[str, Any]) -> None:
        self.cassette = cassette
        self.pages: dict[str | None, dict[str, Any]] = {p["token"]: p["body"] for p in cassette["pages"]}
        self.hits: list[Hit] = []
        self.errors: list[BaseException] = []
        self._faults: dict[str | None, list[Fault]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        root = self.cassette["path"].rsplit("/", 1)[0]
        return f"http://{host}:{port}{root}"

    def script(self, token: str | None, *faults: Fault) -> None:
        with self._lock:
            self._faults.setdefault(token, []).extend(faults)

    def token(self, page_index: int) -> str | None:
        return self.cassette["pages"][page_index]["token"]

    def tokens_requested(self) -> list[str | None]:
        with self._lock:
            return [h.token for h in self.hits]

    def start(self) -> ReplayServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                server._answer(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                import sys

                exc = sys.exc_info()[1]
                if not isinstance(exc, ConnectionError | TimeoutError) and exc is not None:
                    server.errors.append(exc)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ answering

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        arrived = time.monotonic()
        url = urlsplit(req.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        token = params.pop("pageToken", None)
        page_size = params.pop("pageSize", None)
        count_total = params.pop("countTotal", None) == "true"
        problem = None
        if url.path != self.cassette["path"]:
            problem = f"no endpoint {url.path}"
        elif params != self.cassette["params"]:
            problem = f"parameters {params} differ from the recording {self.cassette['params']}"
        elif page_size != str(self.cassette["page_size"]):
            problem = f"pageSize {page_size} differs from the recording ({self.cassette['page_size']})"
        elif token not in self.pages:
            problem = f"invalid pageToken {token!r}"
        with self._lock:
            queue = None if problem else self._faults.get(token)
            fault = queue.pop(0) if queue else None
            answer = "400" if problem else _label(fault)
            self.hits.append(Hit(arrived, token, {**params, "pageSize": page_size or ""}, answer))
        try:
            if problem:
                self._send(req, 400, problem.encode(), {"Content-Type": "text/plain"})
                return
            body = dict(self.pages[token])
            if not (token is None and count_total):
                body.pop("totalCount", None)
            data = json.dumps(body, ensure_ascii=False).encode("utf-8")
            self._send_with_fault(req, fault, data)
        except (ConnectionError, TimeoutError):
            pass  # the client gave up (timeout) or was killed

    def _send_with_fault(self, req: BaseHTTPRequestHandler, fault: Fault | None, data: bytes) -> None:
        json_type = {"Content-Type": "application/json"}
        if fault is None:
            self._send(req, 200, data, json_type)
        elif fault.kind == "delay":
            if self._stopping.wait(fault.seconds):
                return
            self._send(req, 200, data, json_type)
        elif fault.kind == "status":
            headers = {"Content-Type": "text/plain", **fault.headers}
            self._send(req, fault.status, b"server trouble (scripted)", headers)
        elif fault.kind == "truncate":
            self._send(req, 200, data[: len(data) // 2], json_type)
        elif fault.kind == "short":
            req.send_response(200)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(data)))
            req.end_headers()
            req.wfile.write(data[: len(data) // 2])
            req.wfile.flush()
            req.close_connection = True
        else:
            raise ValueError(f"unknown fault {fault.kind}")

    @staticmethod
    def _send(req: BaseHTTPRequestHandler, status: int, data: bytes, headers: dict[str, str]) -> None:
        req.send_response(status)
        for name, value in headers.items():
            req.send_header(name, value)
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)
        req.wfile.flush()


def _label(fault: Fault | None) -> str:
    if fault is None:
        return "200"
    if fault.kind == "status":
        return str(fault.status)
    if fault.kind == "delay":
        return "delay+200"
    return fault.kind
