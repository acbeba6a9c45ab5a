"""The store and build folder: byte-identical rebuilds, incremental replacement, exports, a killed build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pyoxigraph as ox
import pytest
from rdflib import Graph

from kg.build import build
from kg.records import TrialExtraction
from kg.store import current_store_dir, open_store, trial_graphs

ROOT = Path(__file__).resolve().parent.parent
CD19_TRIALS = """
    PREFIX cartkg: <https://w3id.org/cartkg/>
    SELECT (COUNT(DISTINCT ?trial) AS ?n) WHERE {
        GRAPH ?g { ?trial cartkg:hasProduct/cartkg:hasConstruct/cartkg:targetsAntigen cartkg:AntigenCD19 }
    }"""


def seeds() -> list[TrialExtraction]:
    gold = json.loads((ROOT / "tests/fixtures/gold_seeds.json").read_text(encoding="utf-8"))
    return [TrialExtraction.from_json(obj) for obj in gold]


def count(store: ox.Store, query: str) -> int:
    return int(next(iter(store.query(query)))["n"].value)


def test_store_rebuild_is_byte_identical(tmp_path: Path) -> None:
    build([(e, None) for e in seeds()], tmp_path / "a")
    build([(e, None) for e in reversed(seeds())], tmp_path / "b")  # input order does not matter
    first = (tmp_path / "a/graph.ttl").read_bytes()
    assert first == (tmp_path / "b/graph.ttl").read_bytes()
    report = build([(e, None) for e in seeds()], tmp_path / "a")  # incremental rebuild: nothing changed
    assert report["trials_unchanged"] == 5 and report["trials_added"] == report["trials_replaced"] == 0
    assert (tmp_path / "a/graph.ttl").read_bytes() == first
    assert Graph().parse(tmp_path / "a/graph.ttl", format="turtle")  # parses


def test_store_answers_queries_and_holds_one_graph_per_trial(tmp_path: Path) -> None:
    report = build([(e, None) for e in seeds()], tmp_path / "out")
    store = open_store(tmp_path / "out")
    assert [tid for tid, _ in trial_graphs(store)] == sorted(e.trial_id for e in seeds())
    assert count(store, CD19_TRIALS) == 5  # every seed targets CD19 (test the answer, not that it runs)
    assert report["triples_total"] == sum(report["triples_per_trial"].values()) + report["triples_vocabulary"]
    assert len(store) == report["triples_total"]


def test_store_changed_trial_replaces_only_its_graph(tmp_path: Path) -> None:
    original = seeds()
    build([(e, None) for e in original], tmp_path / "out")
    before = (tmp_path / "out/graph.ttl").read_text(encoding="utf-8")
    changed = [replace(original[0], enrollment=99)] + original[1:]
    report = build([(e, None) for e in changed[:2]], tmp_path / "out")  # only two trials given this time
    assert (report["trials_replaced"], report["trials_unchanged"], report["trials_in_store"]) == (1, 1, 5)
    store = open_store(tmp_path / "out")
    answer = store.query(
        "PREFIX cartkg: <https://w3id.org/cartkg/> SELECT ?n WHERE { GRAPH ?g { ?t cartkg:enrollment ?n ;"
        f' cartkg:trialId "{original[0].trial_id}" }} }}'
    )
    assert [int(row["n"].value) for row in answer] == [99]
    after = (tmp_path / "out/graph.ttl").read_text(encoding="utf-8")
    assert before != after and after.count(" a cartkg:TrialGraph") == 5


def test_store_fresh_build_drops_trials_not_given(tmp_path: Path) -> None:
    build([(e, None) for e in seeds()], tmp_path / "out")
    report = build([(seeds()[0], None)], tmp_path / "out", fresh=True)
    assert report["trials_in_store"] == 1


def test_store_extra_formats_round_trip(tmp_path: Path) -> None:
    report = build([(e, None) for e in seeds()], tmp_path / "out", formats=["trig", "nquads", "jsonld"])
    total = report["triples_total"]
    trig = ox.Store()
    trig.load(path=str(tmp_path / "out/graph.trig"), format=ox.RdfFormat.TRIG)
    assert len(list(trig.named_graphs())) == 6 and len(trig) == total
    lines = (tmp_path / "out/graph.nq").read_text(encoding="utf-8").splitlines()
    assert len(lines) == total and lines == sorted(lines)
    jsonld = ox.Store()
    jsonld.load(path=str(tmp_path / "out/graph.jsonld"), format=ox.RdfFormat.JSON_LD)
    assert len(jsonld) == total


def test_store_duplicate_trial_ids_are_reported(tmp_path: Path) -> None:
    one = seeds()[0]
    report = build([(one, None), (replace(one, enrollment=7), None)], tmp_path / "out")
    assert report["trials_in_store"] == 1 and len(report["duplicates"]) == 1


KILL_SCRIPT = """
import json, sys
from dataclasses import replace
from pathlib import Path
from kg.build import build
from kg.records import TrialExtraction
gold = json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))
base = TrialExtraction.from_json(gold[0])
pairs = ((replace(base, trial_id=f"big{i:05d}"), None) for i in range(100000))
build(pairs, Path(sys.argv[1]))
"""


@pytest.mark.slow
def test_store_build_killed_half_way_leaves_previous_store_usable(tmp_path: Path) -> None:
    out = tmp_path / "out"
    build([(e, None) for e in seeds()], out)
    previous = current_store_dir(out)
    graph_ttl = (out / "graph.ttl").read_bytes()
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(out), str(ROOT / "tests/fixtures/gold_seeds.json")],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not any(p.name != previous.name and p.name.startswith("store.") for p in out.iterdir()):  # type: ignore[union-attr]
        assert proc.poll() is None, "the big build ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(1.0)  # well inside the build: it is now building graphs into the new store
    assert proc.poll() is None
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert current_store_dir(out) == previous
    assert (out / "graph.ttl").read_bytes() == graph_ttl
    assert count(open_store(out), CD19_TRIALS) == 5
    report = build([(e, None) for e in seeds()], out)  # the next build cleans up and works
    assert report["trials_in_store"] == 5
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("store.")) == [
        current_store_dir(out).name
    ]  # type: ignore[union-attr]
