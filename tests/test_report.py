"""The design-landscape report: its numbers on the seeds, a self-contained page, rendered in chromium."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter

import pyoxigraph as ox
import pytest

from kg.build import parse_duration
from kg.report import (
    FIGURE_KEYS,
    build_report,
    cell_sources,
    count_trials,
    cross,
    endpoint_roles,
    follow_up,
    gather,
    iter_svgs,
    schedule_days,
    write_report,
)
from tests.browser import browser_page, external_requests, requires_browser, screenshot_path
from tests.test_export import GOLD, ROOT, write_seed_store

# a real bundled record, added with an empty extraction so the table has an NCT link to check
NCT_RECORD = ROOT / "data" / "examples" / "cart_v2" / "NCT01087294.json"
NCT = "NCT01087294"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return write_seed_store(tmp_path_factory.mktemp("report") / "build", extra=(str(NCT_RECORD),))


@pytest.fixture(scope="module")
def report(store):
    return build_report(store)


@pytest.fixture(scope="module")
def gold():
    return json.loads(GOLD.read_text(encoding="utf-8"))


def test_report_counts_trials_per_antigen_strategy_and_cells(store, gold):
    land = gather(store)
    assert len(land.trials) == 6
    assert count_trials(land, "antigen") == Counter(a for t in gold for a in t["antigens"])
    strat = cross(land, "disease", "strategy")
    expected = Counter((d, t["targeting_strategy"]) for t in gold for d in t["diseases"])
    assert strat == dict(expected)
    # four seeds state no cell source, nor does the record-only trial (it has no product)
    assert cell_sources(land) == Counter({"not stated": 5, "allogeneic": 1})


def test_report_counts_endpoints_follow_up_and_schedule(store, gold):
    land = gather(store)
    roles = endpoint_roles(land)
    expected = Counter(
        (o["endpoint"], o["role"])
        for t in gold
        for o in {(x["endpoint"], x["role"]): x for x in t["outcomes"]}.values()
    )
    assert roles == dict(expected)
    days = follow_up(land)
    want: dict[str, list[float]] = {}
    for t in gold:
        for o in t["outcomes"]:
            if o["max_duration"]:
                want.setdefault(o["endpoint"], []).append(float(parse_duration(o["max_duration"]).days))
    assert days == {k: sorted(v) for k, v in sorted(want.items())}
    assert days["DLT"][0] == 28.0  # seed 000: "to 28 days after infusion"
    schedule = schedule_days(land)
    offsets = Counter()
    for t in gold:
        for o in t["outcomes"]:
            for point in {p for p in o["timepoints"] if p.startswith("P")}:
                offsets[round(float(parse_duration(point).days) * 24) / 24] += 1  # to the hour
    assert schedule == offsets
    assert schedule[28.0] >= 1


def test_report_page_has_every_figure_inline_and_nothing_external(report):
    text, _ = report
    svgs = list(iter_svgs(text))
    assert len(svgs) == len(FIGURE_KEYS) == 8
    for key in FIGURE_KEYS:
        assert f'data-figure="{key}"' in text
    assert "<script" not in text.lower() and "<link" not in text.lower() and "@import" not in text
    assert "<?xml" not in text and "<!DOCTYPE svg" not in text
    urls = re.findall(r'(?:src|href)="([^"#][^"]*)"', text)
    assert urls and all(u.startswith("https://clinicaltrials.gov/study/NCT") for u in urls)
    assert not re.search(r"url\(\s*['\"]?https?:", text)
    assert "2019-" not in text and "dc:date" not in text  # no build date stamped in the SVG metadata
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1][:5]


def test_report_table_links_nct_trials_and_shows_record_titles(report):
    text, _ = report
    assert f'<a href="https://clinicaltrials.gov/study/{NCT}">{NCT}</a>' in text
    assert "000_4cde64b56812378f</td>" in text  # no NCT number: plain text, no link
    assert "Targeting CD19 and CD22 CAR-T Cells Immunotherapy" in text
    assert text.count("<tr>") >= 6


def test_report_is_byte_identical_across_runs_and_hash_seeds(store, report, tmp_path):
    text, _ = report
    assert build_report(store)[0] == text
    trig = tmp_path / "g.trig"
    from kg.export import export

    export(store, "trig", trig)
    out = tmp_path / "report.html"
    env = {**os.environ, "PYTHONHASHSEED": "4242"}
    subprocess.run(
        [sys.executable, "-m", "kg", "report", "--graph", str(trig), "-o", str(out)],
        check=True,
        env=env,
        cwd=ROOT,
        capture_output=True,
    )
    assert out.read_text(encoding="utf-8") == text


def test_report_on_a_graph_without_trials_still_renders(tmp_path):
    empty = ox.Store()
    out = tmp_path / "empty.html"
    summary = write_report(empty, out)
    text = out.read_text(encoding="utf-8")
    assert summary.startswith("0 trials")
    assert len(list(iter_svgs(text))) == 8
    assert "no trial has a target antigen" in text


def test_report_cli_writes_the_page(store, tmp_path, capsys):
    from kg.cli import main
    from kg.export import export

    ttl = tmp_path / "g.nq"
    export(store, "nq", ttl)
    out = tmp_path / "sub" / "report.html"
    assert main(["report", "--graph", str(ttl), "-o", str(out), "--title", "Seeds <landscape>"]) == 0
    assert "6 trials, 8 figures" in capsys.readouterr().err
    assert "<title>Seeds &lt;landscape&gt;</title>" in out.read_text(encoding="utf-8")
    assert main(["report", "--graph", str(tmp_path / "missing.ttl"), "-o", str(out)]) == 2


@pytest.mark.browser
@requires_browser
def test_report_renders_in_chromium_with_its_figures_and_no_network(report, tmp_path):
    text, _ = report
    page_path = tmp_path / "report.html"
    page_path.write_text(text, encoding="utf-8")
    with browser_page() as (page, requests):
        page.goto(page_path.as_uri())
        page.wait_for_selector("#trials-table tbody tr", timeout=20_000)
        boxes = [page.locator(f'figure[data-figure="{key}"] svg').bounding_box() for key in FIGURE_KEYS]
        rows = page.locator("#trials-table tbody tr").count()
        link = page.locator(f'#trials-table a[href="https://clinicaltrials.gov/study/{NCT}"]').count()
        cd19_labels = page.locator('figure[data-figure="antigens"] svg text', has_text="CD19").count()
        page.screenshot(path=str(screenshot_path("report.png")), full_page=True)
    assert all(b is not None and b["width"] > 200 and b["height"] > 100 for b in boxes), boxes
    assert rows == 6 and link == 1 and cd19_labels >= 1
    assert external_requests(requests) == []
    assert requests == [page_path.as_uri()]  # the page itself and nothing else
