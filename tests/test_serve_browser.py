"""The YASGUI page of `cartkg serve`, loaded in real headless chromium: an example query shows rows."""

from __future__ import annotations

import threading

import pytest

from kg.serve import ServeSettings, SparqlServer
from kg.sparql_exec import QueryExecutor
from tests.browser import browser_page, external_requests, requires_browser, screenshot_path
from tests.test_serve import EX, make_store

pytestmark = [pytest.mark.browser, requires_browser]


@pytest.fixture
def endpoint(tmp_path):
    make_store(tmp_path / "store", n=12)
    executor = QueryExecutor(tmp_path / "store", workers=1, timeout=10, max_rows=1000)
    examples = [
        {
            "name": "cq01_titles",
            "summary": "Trial titles",
            "query": f"SELECT ?trial ?title WHERE {{ ?trial <{EX}title> ?title }} ORDER BY ?trial",
        }
    ]
    server = SparqlServer(ServeSettings(port=0), executor, examples)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/"
    server.shutdown()
    server.server_close()
    executor.close()


def test_serve_browser_runs_an_example_query_and_shows_rows(endpoint):
    with browser_page() as (page, requests):
        page.goto(endpoint)
        page.wait_for_selector(".yasqe .CodeMirror", timeout=20_000)
        page.select_option("#example-select", "0")
        page.click(".yasqe_queryButton")
        page.wait_for_selector(".yasr table tbody tr", timeout=20_000)
        rows = page.locator(".yasr table tbody tr").count()
        text = page.locator(".yasr table").inner_text()
        page.screenshot(path=str(screenshot_path("serve_yasgui.png")), full_page=True)
    assert rows == 12
    assert "Trial 0" in text and f"{EX}trial/000" in text
    assert external_requests(requests) == []
