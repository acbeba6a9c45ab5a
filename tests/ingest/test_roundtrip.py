"""kg.ingest.roundtrip: join real outcomes the CSV way and split them back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kg.ingest.roundtrip import main, measure_roundtrip
from kg.resources import examples_dir

# Reached when written: 557 of 562 bundled outcomes (99.1 %); rounded down so it may only go up.
BUNDLED_RATE_FLOOR = 0.991


def test_roundtrip_rate_on_bundled_samples_stays_at_least_the_reached_value() -> None:
    report = measure_roundtrip([examples_dir() / "ctgov_v2", examples_dir() / "ctgov_xml"])
    assert report.errors == []
    assert report.total >= 550  # several hundred real outcomes: 116 from API v2 JSON, 446 from legacy XML
    assert set(report.by_format) == {"json", "xml"}
    assert report.rate >= BUNDLED_RATE_FLOOR, "\n".join(
        f"{f.source}: expected {f.expected} got {f.got}" for f in report.failures
    )


def _study(*outcomes: dict[str, str]) -> dict[str, object]:
    return {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT00000001"},
            "outcomesModule": {"primaryOutcomes": list(outcomes)},
        }
    }


def test_roundtrip_reads_v2_pages_and_json_lines(tmp_path: Path) -> None:
    one = {
        "measure": "Overall survival",
        "description": "Time to death, any cause.",
        "timeFrame": "Up to 2 years",
    }
    two = {"measure": "PFS", "timeFrame": "Day 28"}
    (tmp_path / "page.json").write_text(json.dumps({"studies": [_study(one)], "nextPageToken": "x"}))
    (tmp_path / "lines.jsonl").write_text(json.dumps(_study(two)) + "\n" + json.dumps(_study(one)) + "\n")
    report = measure_roundtrip([tmp_path])
    assert (report.exact, report.total, report.errors) == (3, 3, [])
    assert report.by_format == {"json": [3, 3]}


def test_roundtrip_reads_xml_and_collapses_textblock_whitespace(tmp_path: Path) -> None:
    (tmp_path / "s.xml").write_text(
        "<clinical_study><primary_outcome><measure>Overall   survival</measure>"
        "<time_frame>Up to\n   2 years</time_frame>"
        "<description>\n  Time from infusion\n  to death.\n</description></primary_outcome>"
        "<other_outcome><measure>CRS</measure><time_frame>Day 28</time_frame></other_outcome>"
        "</clinical_study>"
    )
    report = measure_roundtrip([tmp_path / "s.xml"])
    assert (report.exact, report.total, report.failures) == (2, 2, [])


def test_roundtrip_skips_outcome_entries_of_the_wrong_shape(tmp_path: Path) -> None:
    study = _study({"measure": "ORR", "timeFrame": "Week 12"})
    study["protocolSection"]["outcomesModule"]["secondaryOutcomes"] = [
        "not an object",
        {"timeFrame": "Day 1"},
    ]  # type: ignore[index]
    (tmp_path / "s.json").write_text(json.dumps(study))
    report = measure_roundtrip([tmp_path])
    assert (report.exact, report.total, report.errors) == (1, 1, [])


def test_roundtrip_reports_a_bad_file_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"protocolSection": ')
    (tmp_path / "doctype.xml").write_text('<!DOCTYPE x [<!ENTITY a "b">]><clinical_study/>')
    (tmp_path / "good.json").write_text(json.dumps(_study({"measure": "ORR", "timeFrame": "Week 12"})))
    report = measure_roundtrip([tmp_path])
    assert report.total == 1
    assert len(report.errors) == 2
    assert any("bad.json" in e for e in report.errors) and any("doctype.xml" in e for e in report.errors)


def test_roundtrip_command_prints_rate_and_failures(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--show", "3", str(examples_dir() / "ctgov_xml")])
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("round-trip exact: ")
    assert "expected: M=" in out and "got:      M=" in out
    assert main(["--min", "1.01", str(examples_dir() / "ctgov_v2")]) == 1
