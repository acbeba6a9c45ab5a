"""A read-only SPARQL 1.1 Protocol endpoint over the embedded store, with a YASGUI page.

``/sparql``   GET ``?query=`` or POST (``application/x-www-form-urlencoded`` or
              ``application/sparql-query``); updates answer 403; no query → service description.
``/``         the YASGUI editor (JS/CSS served from the package, no CDN) with ``queries/`` as examples.
``/queries``  the example queries as JSON.

Limits are named settings (:class:`ServeSettings`); every request is logged with its duration and rows.
"""

from __future__ import annotations

import html
import json
import logging
import sys
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from kg.sparql_exec import Answer, QueryExecutor, error_answer

LOG = logging.getLogger("cartkg.serve")
STATIC_DIR = Path(__file__).resolve().parent / "static"
SD_NS = "http://www.w3.org/ns/sparql-service-description#"


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    timeout: float = 10.0  # seconds per query, hard
    max_rows: int = 10_000  # rows (or triples) per answer
    max_body: int = 1_000_000  # bytes per request body
    workers: int = 2  # query worker processes


class SparqlServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, settings: ServeSettings, executor: QueryExecutor, examples: list[dict[str, str]]
    ) -> None:
        self.settings = settings
        self.executor = executor
        self.examples = examples
        super().__init__((settings.host, settings.port), SparqlHandler)


class SparqlHandler(BaseHTTPRequestHandler):
    server: SparqlServer
    server_version = "cartkg-sparql"
    protocol_version = "HTTP/1.1"

    # ------------------------------------------------------------------ routing
    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self._handle("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._handle("POST")

    def do_HEAD(self) -> None:  # noqa: N802
        self._handle("HEAD")

    def do_PUT(self) -> None:  # noqa: N802
        self._send(error_answer(405, "method not allowed: the endpoint is read-only"))

    do_DELETE = do_PUT
    do_PATCH = do_PUT

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        path = urlsplit(self.path).path
        try:
            if path == "/sparql":
                answer = self._sparql(method)
            elif path in ("/", "/index.html"):
                answer = Answer(200, "text/html; charset=utf-8", render_page(self.server.examples).encode())
            elif path == "/queries":
                answer = Answer(200, "application/json", json.dumps(self.server.examples, indent=1).encode())
            elif path.startswith("/static/"):
                answer = static_file(path.removeprefix("/static/"))
            else:
                answer = error_answer(404, f"no such resource: {path}")
        except _BodyError as exc:
            answer = error_answer(exc.status, exc.message)
        self._send(answer, head=method == "HEAD")
        LOG.info(
            "%s %s %d %.1fms rows=%s",
            method,
            path,
            answer.status,
            (time.monotonic() - started) * 1000,
            "-" if answer.rows is None else answer.rows,
        )

    # ------------------------------------------------------------------ SPARQL protocol
    def _sparql(self, method: str) -> Answer:
        params = parse_qs(urlsplit(self.path).query, keep_blank_values=True)
        if method == "POST":
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            body = self._read_body()
            if ctype == "application/sparql-update":
                return error_answer(403, "this endpoint is read-only: SPARQL Update is not accepted")
            if ctype == "application/sparql-query":
                params.setdefault("query", []).append(body.decode("utf-8", errors="replace"))
            elif ctype == "application/x-www-form-urlencoded":
                form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
                for key, values in form.items():
                    params.setdefault(key, []).extend(values)
            else:
                return error_answer(415, f"unsupported Content-Type {ctype!r} for a SPARQL request")
        if "update" in params:
            return error_answer(403, "this endpoint is read-only: SPARQL Update is not accepted")
        queries = params.get("query", [])
        if not queries:
            return Answer(
                200, "text/turtle; charset=utf-8", service_description(self._endpoint_url()).encode()
            )
        if len(queries) > 1:
            return error_answer(400, "exactly one 'query' parameter is allowed")
        if "default-graph-uri" in params or "named-graph-uri" in params:
            return error_answer(
                400, "default-graph-uri / named-graph-uri are not supported; use FROM in the query"
            )
        accept = params.get("format", [None])[0] or self.headers.get("Accept")
        return self.server.executor.execute(queries[0], _format_param(accept))

    def _read_body(self) -> bytes:
        length_header = self.headers.get("Content-Length")
        if length_header is None:
            raise _BodyError(411, "a request body needs a Content-Length")
        try:
            length = int(length_header)
        except ValueError as exc:
            raise _BodyError(400, "Content-Length is not a number") from exc
        if length > self.server.settings.max_body:
            raise _BodyError(413, f"request body over the limit of {self.server.settings.max_body} bytes")
        return self.rfile.read(length)

    def _endpoint_url(self) -> str:
        host = self.headers.get("Host") or f"{self.server.settings.host}:{self.server.settings.port}"
        return f"http://{host}/sparql"

    # ------------------------------------------------------------------ output
    def _send(self, answer: Answer, head: bool = False) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head:
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
        return


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_FORMAT_SHORTCUTS = {
    "json": "application/sparql-results+json",
    "xml": "application/sparql-results+xml",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "turtle": "text/turtle",
    "ttl": "text/turtle",
    "nt": "application/n-triples",
    "jsonld": "application/ld+json",
}


def _format_param(accept: str | None) -> str | None:
    """Allow ``?format=csv`` shortcuts (as many public endpoints do) beside the Accept header."""
    if accept and accept.lower() in _FORMAT_SHORTCUTS:
        return _FORMAT_SHORTCUTS[accept.lower()]
    return accept


def static_file(name: str) -> Answer:
    allowed = {"yasgui.min.js": "text/javascript; charset=utf-8", "yasgui.min.css": "text/css; charset=utf-8"}
    if name not in allowed:
        return error_answer(404, f"no such static file: {name}")
    return Answer(200, allowed[name], (STATIC_DIR / "yasgui" / name).read_bytes())


def service_description(endpoint: str) -> str:
    """A SPARQL 1.1 Service Description of this endpoint (Turtle)."""
    return f"""@prefix sd: <{SD_NS}> .
@prefix formats: <http://www.w3.org/ns/formats/> .

<{endpoint}> a sd:Service ;
    sd:endpoint <{endpoint}> ;
    sd:supportedLanguage sd:SPARQL11Query ;
    sd:resultFormat formats:SPARQL_Results_JSON, formats:SPARQL_Results_XML, formats:SPARQL_Results_CSV,
        formats:SPARQL_Results_TSV, formats:Turtle, formats:N-Triples, formats:JSON-LD ;
    sd:feature sd:UnionDefaultGraph ;
    sd:defaultDataset [ a sd:Dataset ; sd:defaultGraph [ a sd:Graph ] ] .
"""


def render_page(examples: list[dict[str, str]]) -> str:
    """The YASGUI page: editor and results, with one tab per example query."""
    examples_json = json.dumps(examples).replace("</", "<\\/")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>cartkg SPARQL</title>
<link rel="stylesheet" href="/static/yasgui.min.css">
<style>body{{font-family:sans-serif;margin:0 1em}} header p{{margin:.2em 0 .8em;color:#444}}
#examples{{margin:.5em 0}} #examples select{{max-width:60em}}</style>
</head><body>
<header><h1>cartkg SPARQL endpoint</h1>
<p>Read-only SPARQL 1.1 over the CAR-T trial graph at <code>/sparql</code>. {html.escape(str(len(examples)))}
example queries below; pick one to load it into the editor.</p></header>
<div id="examples"><label>Example: <select id="example-select"><option value="">—</option></select></label></div>
<div id="yasgui"></div>
<script src="/static/yasgui.min.js"></script>
<script>
const EXAMPLES = {examples_json};
Yasgui.Yasqe.defaults.autocompleters = [];
const yasgui = new Yasgui(document.getElementById("yasgui"), {{
  requestConfig: {{ endpoint: "/sparql", method: "POST" }},
  copyEndpointOnNewTab: true,
  persistenceId: null,
  endpointCatalogueOptions: {{ getData: () => [{{ endpoint: "/sparql" }}] }}
}});
const select = document.getElementById("example-select");
EXAMPLES.forEach((ex, i) => {{
  const opt = document.createElement("option");
  opt.value = String(i); opt.textContent = ex.name + " — " + ex.summary; select.appendChild(opt);
}});
select.addEventListener("change", () => {{
  const ex = EXAMPLES[Number(select.value)]; if (!ex) return;
  const tab = yasgui.getTab(); tab.setQuery(ex.query); tab.setName(ex.name);
}});
if (EXAMPLES.length) {{ yasgui.getTab().setQuery(EXAMPLES[0].query); yasgui.getTab().setName(EXAMPLES[0].name); }}
</script></body></html>
"""


def serve(store_path: Path, settings: ServeSettings, examples: list[dict[str, str]]) -> None:
    """Run the endpoint until interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    executor = QueryExecutor(
        store_path, workers=settings.workers, timeout=settings.timeout, max_rows=settings.max_rows
    )
    server = SparqlServer(settings, executor, examples)
    host, port = server.server_address[:2]
    LOG.info(
        "cartkg SPARQL endpoint on http://%s:%s/ (query timeout %gs, max rows %d)",
        host,
        port,
        settings.timeout,
        settings.max_rows,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        executor.close()
