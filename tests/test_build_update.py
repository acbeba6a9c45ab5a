"""`cartkg build --update`: withdrawn trials removed, --prune, provenance, a report whose counts add up,
and the streaming build (workers, spooled load, sorted runs) giving the same bytes as the simple path."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import kg.store
from kg.build import BuildFailure, build, build_records
from kg.cli import main
from kg.records import TrialExtraction, TrialRecord
from kg.store import current_store_dir, open_store, read_manifest, trial_graphs
from tests.test_build import seed_pairs

ROOT = Path(__file__).resolve().parent.parent
V2 = ROOT / "data/examples/ctgov_v2"
WITHDRAWN_V2 = "NCT00973089"  # its overallStatus is WITHDRAWN


def digests(out: Path) -> dict[str, str]:
    return {tid: e["digest"] for tid, e in read_manifest(current_store_dir(out)).items()}


def assert_reconciled(report: dict) -> None:
    assert report["reconciliation"]["ok"], report["reconciliation"]["mismatches"]


def withdraw(record: TrialRecord) -> TrialRecord:
    return replace(record, status="WITHDRAWN")


def test_build_update_removes_withdrawn_trial_and_keeps_the_others_unchanged(tmp_path: Path) -> None:
    pairs = seed_pairs()
    out = tmp_path / "out"
    build(pairs, out)
    before = digests(out)
    gone = pairs[0][0].trial_id
    report = build([(pairs[0][0], withdraw(pairs[0][1]))] + pairs[1:], out)
    assert report["removed"] == {"withdrawn": [gone], "pruned": []}
    assert (report["trials_removed"], report["trials_unchanged"], report["trials_in_store"]) == (1, 4, 4)
    assert report["trials_added"] == report["trials_replaced"] == 0 and report["records_withdrawn"] == 1
    assert digests(out) == {tid: d for tid, d in before.items() if tid != gone}
    assert gone not in [tid for tid, _ in trial_graphs(open_store(out))]
    assert f"/{gone}" not in (out / "graph.ttl").read_text(encoding="utf-8")
    assert_reconciled(report)


def test_build_withdrawn_record_of_a_trial_not_in_store_is_reported_not_added(tmp_path: Path) -> None:
    pairs = seed_pairs()
    report = build([(pairs[0][0], withdraw(pairs[0][1]))], tmp_path / "out")
    assert report["withdrawn_not_in_store"] == [pairs[0][0].trial_id]
    assert report["trials_in_store"] == 0 and report["trials_removed"] == 0
    assert_reconciled(report)


def test_build_prune_removes_trials_absent_from_the_inputs(tmp_path: Path) -> None:
    pairs = seed_pairs()
    out = tmp_path / "out"
    build(pairs, out)
    kept = build(pairs[:3], out)  # an update without --prune keeps what it was not given
    assert kept["trials_in_store"] == 5 and kept["removed"]["pruned"] == []
    report = build(pairs[:3], out, prune=True)
    assert report["removed"]["pruned"] == sorted(e.trial_id for e, _ in pairs[3:])
    assert (report["trials_in_store"], report["trials_removed"], report["trials_unchanged"]) == (3, 2, 3)
    assert sorted(digests(out)) == sorted(e.trial_id for e, _ in pairs[:3])
    assert_reconciled(report)


def test_build_prune_is_skipped_when_a_record_failed_to_read(tmp_path: Path) -> None:
    pairs = seed_pairs()
    out = tmp_path / "out"
    build(pairs, out)
    unreadable = BuildFailure("#0", "studies/NCT09999999.json", "invalid JSON", "read")
    report = build(pairs[:3], out, prune=True, items=[unreadable])
    assert report["removed"]["pruned"] == [] and "nothing pruned" in report["prune_skipped"]
    assert report["trials_in_store"] == 5 and report["read_failures"] == report["records_failed"] == 1
    assert_reconciled(report)


def test_build_failed_trial_keeps_its_previous_graph_and_is_not_pruned(tmp_path: Path) -> None:
    pairs = seed_pairs()
    out = tmp_path / "out"
    build(pairs, out)
    extraction, record = pairs[0]
    mismatched = replace(record, trial_id="NCT00000000")  # record and extraction disagree: a build failure
    report = build([(extraction, mismatched)] + pairs[1:], out, prune=True)
    assert report["build_failures"] == 1 and report["removed"]["pruned"] == []
    assert report["trials_in_store"] == 5 and digests(out)[extraction.trial_id]
    assert_reconciled(report)


def test_build_provenance_records_registry_version_source_and_build_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from kg.ingest import read_paths

    names = ("NCT03418623", "NCT03475563", "NCT04207047")
    records = [r for r in read_paths([str(V2 / f"{n}.json") for n in names]) if isinstance(r, TrialRecord)]
    out = tmp_path / "out"
    report = build(None, out, items=build_records(iter(records)))
    rows = open_store(out).query(
        """PREFIX cartkg: <https://w3id.org/cartkg/> PREFIX prov: <http://www.w3.org/ns/prov#>
        SELECT ?id ?version ?path WHERE { GRAPH ?g {
            ?g a cartkg:TrialGraph ; cartkg:describesTrial ?t ; prov:wasDerivedFrom ?rec .
            ?t cartkg:trialId ?id . ?rec a cartkg:SourceRecord ; cartkg:sourcePath ?path .
            OPTIONAL { ?rec cartkg:lastUpdate ?version } } }"""
    )
    got = {r["id"].value: (r["version"].value if r["version"] else None, r["path"].value) for r in rows}
    assert got == {r.trial_id: (r.last_update, r.source.path) for r in records}
    assert all(re.fullmatch(r"\d{4}-\d{2}-\d{2}", version or "") for version, _ in got.values())
    manifest = read_manifest(current_store_dir(out))
    for record in records:
        entry = manifest[record.trial_id]
        assert (entry["registry_version"], entry["source"]) == (record.last_update, record.source.path)
        assert entry["built_at"] == report["built_at"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z", report["built_at"])
    assert main(["validate", str(out)]) == 0  # the provenance statements conform to the shapes
    capsys.readouterr()


def fetch_folder(tmp_path: Path) -> Path:
    """A `cartkg fetch`-style folder: three registry records (one withdrawn) and one truncated file."""
    folder = tmp_path / "fetched"
    studies = folder / "studies"
    studies.mkdir(parents=True)
    (folder / ".fetch-state.json").write_text("{}\n", encoding="utf-8")
    for name in ("NCT02552212", "NCT03418623", WITHDRAWN_V2):
        shutil.copy(V2 / f"{name}.json", studies / f"{name}.json")
    (studies / "NCT09999999.json").write_text('{"protocolSection": ', encoding="utf-8")
    return folder


def test_build_cli_report_reconciles_counts_on_a_folder_with_a_bad_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, out = fetch_folder(tmp_path), tmp_path / "out"
    assert main(["build", str(folder), "--out", str(out), "--jobs", "1"]) == 1  # a record failed
    err = capsys.readouterr().err
    assert "4 studies fetched; 3 records read, 1 failed to read; 2 trials built, 0 failed, 1 withdrawn" in err
    assert "NCT09999999.json" in err and "counts reconcile" in err
    report = json.loads((out / "build-report.json").read_text(encoding="utf-8"))
    assert (report["studies_fetched"], report["records_read"], report["read_failures"]) == (4, 3, 1)
    assert (report["trials_built"], report["records_withdrawn"], report["trials_in_store"]) == (2, 1, 2)
    assert report["withdrawn_not_in_store"] == [WITHDRAWN_V2] and report["records_failed"] == 1
    assert_reconciled(report)
    # the registry later lists the truncated study properly and withdraws one more: an explicit update
    shutil.copy(V2 / "NCT03453554.json", folder / "studies/NCT09999999.json")
    record = json.loads((V2 / "NCT03418623.json").read_text(encoding="utf-8"))
    record["protocolSection"]["statusModule"]["overallStatus"] = "WITHDRAWN"
    (folder / "studies/NCT03418623.json").write_text(json.dumps(record), encoding="utf-8")
    assert main(["build", str(folder), "--out", str(out), "--update", "--prune"]) == 0
    report = json.loads((out / "build-report.json").read_text(encoding="utf-8"))
    assert report["removed"] == {"withdrawn": ["NCT03418623"], "pruned": []}
    assert (report["trials_added"], report["trials_unchanged"], report["trials_in_store"]) == (1, 1, 2)
    assert "removed (withdrawn): NCT03418623" in capsys.readouterr().err
    assert_reconciled(report)


def test_build_cli_prune_needs_an_existing_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", str(V2), "--out", str(tmp_path / "out"), "--fresh", "--prune"]) == 2
    assert "--prune" in capsys.readouterr().err


def test_build_records_over_workers_gives_the_same_trials_as_one_process(tmp_path: Path) -> None:
    from kg.ingest import read_paths

    records = [r for r in read_paths([str(V2)]) if isinstance(r, TrialRecord)]
    one = list(build_records(iter(records), jobs=1))
    two = list(build_records(iter(records), jobs=2))
    assert [type(i).__name__ for i in one] == [type(i).__name__ for i in two]
    assert [getattr(i, "digest", None) for i in one] == [getattr(i, "digest", None) for i in two]
    assert [i.trial_id for i in two] == [r.trial_id for r in records]  # input order kept
    assert any(type(i).__name__ == "TrialWithdrawn" for i in two)


def test_build_sorted_runs_spilled_to_disk_give_the_same_graph_ttl(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pairs = seed_pairs()
    build(pairs, tmp_path / "one")
    monkeypatch.setattr(kg.store, "RUN_TRIPLES", 500)  # many runs, merged
    build(list(reversed(pairs)), tmp_path / "many", jobs=2)  # and two processes make them
    assert (tmp_path / "one/graph.ttl").read_bytes() == (tmp_path / "many/graph.ttl").read_bytes()


def test_build_duplicate_then_withdrawn_in_one_build_is_settled_after_the_bulk_load(tmp_path: Path) -> None:
    pairs = seed_pairs()
    extraction, record = pairs[0]
    changed: TrialExtraction = replace(extraction, enrollment=99)
    out = tmp_path / "out"
    report = build([(extraction, record), (changed, record)] + pairs[1:], out)
    rows = open_store(out).query(
        "PREFIX cartkg: <https://w3id.org/cartkg/> SELECT ?n WHERE { GRAPH ?g { ?t cartkg:enrollment ?n ;"
        f' cartkg:trialId "{extraction.trial_id}" }} }}'
    )
    assert [int(r["n"].value) for r in rows] == [99] and len(report["duplicates"]) == 1
    assert_reconciled(report)
    report = build([(extraction, record), (extraction, withdraw(record))], tmp_path / "fresh", fresh=True)
    assert report["trials_in_store"] == 0 and trial_graphs(open_store(tmp_path / "fresh")) == []
    assert_reconciled(report)
