"""cartkg extract / cartkg bench extract: output shape, failures on stderr, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from kg.bench import bench_extract, format_bench
from kg.cli import main

SEEDS = Path(__file__).resolve().parents[2] / "data" / "examples" / "seeds"


def test_extract_prints_one_contract_object_per_trial(capsys) -> None:
    assert main(["extract", str(SEEDS)]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["trial_id"] for r in rows] == sorted(p.stem for p in SEEDS.glob("*.txt"))
    for key in ("antigens", "targeting_strategy", "products", "evidence", "outcomes", "design", "dose"):
        assert key in rows[0]
    assert "5 records read, 0 failed; 5 extracted" in err


def test_extract_table_has_a_row_per_trial(capsys) -> None:
    assert main(["extract", str(SEEDS), "--format", "table"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["trial_id", "antigens", "strategy"]
    assert len(lines) == 6 and "bispecific" in lines[2]


def test_extract_reports_unreadable_input_and_exits_1(tmp_path, capsys) -> None:
    bad = tmp_path / "broken.json"
    bad.write_text('{"protocolSection": ')
    assert main(["extract", str(bad), str(SEEDS / "000_4cde64b56812378f.txt")]) == 1
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1
    assert "broken.json" in err


def test_extract_refuses_zero_processes(capsys) -> None:
    assert main(["extract", str(SEEDS), "--processes", "0"]) == 2
    assert "--processes" in capsys.readouterr().err


def test_bench_reports_both_contenders() -> None:
    result = bench_extract([str(SEEDS)], runs=1)
    assert result["records"] == 5 and result["words"] > 0
    for name in ("extractor", "baseline_re"):
        assert set(result[name]) == {"median_s", "records_per_s", "words_per_s", "runs_s"}
        assert len(result[name]["runs_s"]) == 1
    assert "extractor time / baseline time" in format_bench(result)
