"""kg.serve: the read-only SPARQL endpoint, on a real loopback port, with a real HTTP client."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import httpx
import pyoxigraph as ox
import pytest

from kg.serve import ServeSettings, SparqlServer
from kg.sparql_exec import QueryExecutor, negotiate

EX = "http://example.org/"
TIMEOUT = 2.0
MAX_ROWS = 50


def make_store(path: Path, n: int = 120) -> None:
    store = ox.Store(str(path))
    quads = []
    for i in range(n):
        graph = ox.NamedNode(f"{EX}graph/{i % 3}")
        s = ox.NamedNode(f"{EX}trial/{i:03d}")
        quads.append(ox.Quad(s, ox.NamedNode(f"{EX}antigen"), ox.Literal("CD19" if i % 2 else "CD22"), graph))
        quads.append(ox.Quad(s, ox.NamedNode(f"{EX}title"), ox.Literal(f"Trial {i}", language="en"), graph))
    store.bulk_extend(quads)
    store.flush()


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    store_dir = tmp_path_factory.mktemp("store")
    make_store(store_dir)
    settings = ServeSettings(port=0, timeout=TIMEOUT, max_rows=MAX_ROWS, max_body=10_000, workers=2)
    executor = QueryExecutor(store_dir, workers=2, timeout=TIMEOUT, max_rows=MAX_ROWS)
    examples = [{"name": "cq01_demo", "summary": "demo", "query": "SELECT * { ?s ?p ?o } LIMIT 3"}]
    server = SparqlServer(settings, executor, examples)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}"
    server.shutdown()
    server.server_close()
    executor.close()


COUNT_CD19 = f'SELECT (COUNT(?s) AS ?n) WHERE {{ ?s <{EX}antigen> "CD19" }}'


def test_serve_get_and_post_forms_answer_sparql_json(endpoint):
    for response in (
        httpx.get(endpoint + "/sparql", params={"query": COUNT_CD19}),
        httpx.post(endpoint + "/sparql", data={"query": COUNT_CD19}),
        httpx.post(
            endpoint + "/sparql", content=COUNT_CD19, headers={"Content-Type": "application/sparql-query"}
        ),
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/sparql-results+json")
        assert response.json()["results"]["bindings"][0]["n"]["value"] == "60"


def test_serve_negotiates_result_formats(endpoint):
    q = f"SELECT ?s ?t WHERE {{ ?s <{EX}title> ?t }} ORDER BY ?s LIMIT 2"
    xml = httpx.get(
        endpoint + "/sparql", params={"query": q}, headers={"Accept": "application/sparql-results+xml"}
    )
    assert xml.status_code == 200 and '<literal xml:lang="en">Trial 0</literal>' in xml.text
    csv = httpx.get(endpoint + "/sparql", params={"query": q}, headers={"Accept": "text/csv"})
    assert csv.text.splitlines()[:2] == ["s,t", f"{EX}trial/000,Trial 0"]
    tsv = httpx.get(
        endpoint + "/sparql", params={"query": q}, headers={"Accept": "text/tab-separated-values"}
    )
    assert tsv.text.splitlines()[1] == f'<{EX}trial/000>\t"Trial 0"@en'
    construct = f"CONSTRUCT {{ ?s <{EX}antigen> ?a }} WHERE {{ ?s <{EX}antigen> ?a }} ORDER BY ?s LIMIT 2"
    ttl = httpx.get(endpoint + "/sparql", params={"query": construct}, headers={"Accept": "text/turtle"})
    assert ttl.status_code == 200 and ttl.headers["content-type"].startswith("text/turtle")
    assert f"<{EX}trial/000>" in ttl.text
    nt = httpx.get(
        endpoint + "/sparql", params={"query": construct}, headers={"Accept": "application/n-triples"}
    )
    assert len(nt.text.strip().splitlines()) == 2
    jsonld = httpx.get(
        endpoint + "/sparql", params={"query": construct}, headers={"Accept": "application/ld+json"}
    )
    assert jsonld.status_code == 200 and isinstance(jsonld.json(), list | dict)
    refused = httpx.get(endpoint + "/sparql", params={"query": q}, headers={"Accept": "image/png"})
    assert refused.status_code == 406


def test_serve_refuses_updates_with_403(endpoint):
    update = f"INSERT DATA {{ <{EX}x> <{EX}y> <{EX}z> }}"
    assert httpx.post(endpoint + "/sparql", data={"update": update}).status_code == 403
    r = httpx.post(
        endpoint + "/sparql", content=update, headers={"Content-Type": "application/sparql-update"}
    )
    assert r.status_code == 403
    assert httpx.get(endpoint + "/sparql", params={"query": update}).status_code == 403
    assert (
        httpx.get(endpoint + "/sparql", params={"query": "LOAD <http://127.0.0.1:9/x.ttl>"}).status_code
        == 403
    )
    count = httpx.get(endpoint + "/sparql", params={"query": f"ASK {{ <{EX}x> ?p ?o }}"}).json()
    assert count["boolean"] is False


def test_serve_refuses_service_anywhere_without_connecting(endpoint):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    queries = [
        f"SELECT * {{ SERVICE <http://127.0.0.1:{port}/sparql> {{ ?s ?p ?o }} }}",
        f"SELECT * {{ ?a ?b ?c OPTIONAL {{ {{ SELECT * {{ service silent <http://127.0.0.1:{port}/> {{ ?s ?p ?o }} }} }} }} }}",
        f"PREFIX r: <http://127.0.0.1:{port}/> SELECT * {{ SERVICE r:sparql {{ ?s ?p ?o }} }}",
    ]
    for q in queries:
        r = httpx.post(endpoint + "/sparql", data={"query": q})
        assert r.status_code == 403, q
        assert "SERVICE" in r.json()["error"]
    with pytest.raises(TimeoutError):
        listener.accept()
    listener.close()


def test_serve_from_only_names_graphs_in_the_store(endpoint):
    ok = httpx.get(
        endpoint + "/sparql", params={"query": f"SELECT (COUNT(*) AS ?n) FROM <{EX}graph/0> {{ ?s ?p ?o }}"}
    )
    assert ok.status_code == 200 and ok.json()["results"]["bindings"][0]["n"]["value"] == "80"
    for graph in ("file:///etc/passwd", "http://127.0.0.1:9/remote.ttl"):
        for clause in ("FROM", "FROM NAMED"):
            r = httpx.get(
                endpoint + "/sparql", params={"query": f"SELECT * {clause} <{graph}> {{ ?s ?p ?o }}"}
            )
            assert r.status_code == 400 and graph in r.json()["error"]


def test_serve_times_out_slow_queries_with_504_without_blocking_others(endpoint):
    slow = "SELECT (COUNT(*) AS ?n) { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i . ?j ?k ?l }"
    result: dict[str, object] = {}

    def run_slow() -> None:
        started = time.monotonic()
        response = httpx.get(endpoint + "/sparql", params={"query": slow}, timeout=60)
        result["elapsed"] = time.monotonic() - started
        result["response"] = response

    thread = threading.Thread(target=run_slow)
    thread.start()
    time.sleep(0.3)
    fast = httpx.get(endpoint + "/sparql", params={"query": COUNT_CD19}, timeout=60)
    assert fast.status_code == 200  # answered while the slow query still holds a worker
    assert thread.is_alive()
    thread.join(60)
    response = result["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 504
    body = response.json()
    assert body["status"] == 504 and "time limit" in body["error"]
    # a clear error "well within the limit plus a second or two" (generous bound for a noisy machine)
    assert float(result["elapsed"]) < TIMEOUT + 8  # type: ignore[arg-type]
    after = httpx.get(endpoint + "/sparql", params={"query": COUNT_CD19})  # the pool recovered
    assert after.status_code == 200


def test_serve_refuses_results_over_the_row_cap(endpoint):
    r = httpx.get(endpoint + "/sparql", params={"query": "SELECT * { ?s ?p ?o }"})
    assert r.status_code == 503
    assert r.json()["max_rows"] == MAX_ROWS
    under = httpx.get(endpoint + "/sparql", params={"query": f"SELECT * {{ ?s ?p ?o }} LIMIT {MAX_ROWS}"})
    assert under.status_code == 200 and len(under.json()["results"]["bindings"]) == MAX_ROWS


def test_serve_caps_request_bodies(endpoint):
    big = "SELECT * { ?s ?p ?o } #" + "x" * 20_000
    r = httpx.post(endpoint + "/sparql", content=big, headers={"Content-Type": "application/sparql-query"})
    assert r.status_code == 413


def test_serve_describes_itself_and_serves_the_page_offline(endpoint):
    sd = httpx.get(endpoint + "/sparql")
    assert sd.status_code == 200 and "sd:Service" in sd.text and "sd:SPARQL11Query" in sd.text
    page = httpx.get(endpoint + "/")
    assert page.status_code == 200
    assert '<script src="/static/yasgui.min.js">' in page.text and "cq01_demo" in page.text
    assert "cdn" not in page.text.lower() and "https://" not in page.text
    js = httpx.get(endpoint + "/static/yasgui.min.js")
    assert js.status_code == 200 and len(js.content) > 100_000
    assert httpx.get(endpoint + "/static/../serve.py").status_code == 404
    examples = httpx.get(endpoint + "/queries").json()
    assert examples[0]["name"] == "cq01_demo"


def test_serve_binds_loopback_by_default():
    assert ServeSettings().host == "127.0.0.1"


def test_serve_negotiation_prefers_higher_quality():
    assert negotiate("SELECT", "text/csv;q=0.5, application/sparql-results+xml") == "xml"
    assert negotiate("SELECT", "*/*") == "json"
    assert negotiate("CONSTRUCT", None) == "turtle"
    assert negotiate("CONSTRUCT", "text/csv") is None
    assert json.loads('{"a": 1}')["a"] == 1
