"""`cartkg bench` (pipeline) at a tiny N: the JSON has every documented key with sane values, and the
Markdown report shows figures and time-outs.  No timing is asserted."""

from __future__ import annotations

import json

import pytest

from kg.bench import format_pipeline_markdown, main

KEYS = {"trials", "extract_records_per_s", "regex_baseline_records_per_s", "build_s", "validate_s",
        "validate_whole_graph_s", "peak_rss_mb", "queries"}


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    from kg.cli import main as cli

    out = tmp_path_factory.mktemp("bench")
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = cli(["bench", "--trials", "3", "--json", "--runs", "1", "--whole-timeout", "120",
                    "--validate-timeout", "300", "--rdflib-timeout", "300", "--query-timeout", "15",
                    "--work-dir", str(out)])
    assert code == 0
    [line] = buffer.getvalue().splitlines()
    return json.loads(line)


@pytest.mark.slow
def test_bench_pipeline_json_keys_and_sanity(result):
    assert KEYS <= set(result)
    assert result["trials"] == 3
    for key in ("extract_records_per_s", "regex_baseline_records_per_s", "build_s", "peak_rss_mb",
                "serialize_ttl_s", "serialize_nquads_s"):
        assert result[key] > 0, key
    assert result["trials_in_store"] == 3 and result["triples"] > 100
    assert result["validate_s"] is None or result["validate_s"] > 0
    assert result["validate_whole_graph_s"] > 0
    assert isinstance(result["validate_whole_graph_timed_out"], bool)
    assert result["queries"], "every queries/*.rq is timed"
    for name, q in result["queries"].items():
        assert (q["store_ms"] or 0) > 0 or q.get("store_timeout_s"), name
        assert (q["rdflib_ms"] or 0) > 0 or q.get("rdflib_timed_out"), name
    assert result["bundled_records"] == 153
    assert result["bundled_end_to_end_s"] == pytest.approx(
        result["bundled_build_s"] + result["bundled_validate_s"], abs=0.01)
    assert result["cli_build_exit"] == 0 and result["cli_build_s"] > 0 and result["cli_build_peak_rss_mb"] > 50
    assert result["extract_paired_chunks"] == 1 and result["extract_chunk_ratio_median"] > 0
    ratio = result["extract_records_per_s"] / result["regex_baseline_records_per_s"]
    assert result["extract_to_baseline_throughput"] == pytest.approx(ratio, rel=0.02)


@pytest.mark.slow
def test_bench_pipeline_markdown_from_saved_results(result, tmp_path, capsys):
    path = tmp_path / "bench-3.json"
    path.write_text(json.dumps(result), encoding="utf-8")
    assert main(["report", str(path), str(path)]) == 0
    text = capsys.readouterr().out
    assert "| measure | 3 trials | 3 trials |" in text
    assert "peak RSS of the build" in text
    assert all(f"| {name} |" in text for name in result["queries"])


def test_bench_markdown_shows_time_outs_as_lower_bounds():
    fake = {
        "trials": 10, "runs": 3, "extract_runs": 1, "processes": 1, "cpu_count": 2,
        "extract_records_per_s": 5.0, "regex_baseline_records_per_s": 20.0,
        "extract_to_baseline_throughput": 0.25, "build_s": 2.5, "peak_rss_mb": 150.0, "triples": 12345,
        "validate_s": 1800.0, "validate_timed_out": True,
        "validate_whole_graph_s": 600.0, "validate_whole_graph_timed_out": True, "serialize_ttl_s": 0.5,
        "serialize_nquads_s": 0.1, "summary": {"median_store_ms": 5.0, "median_rdflib_to_store_ratio": 20.0},
        "queries": {"cq01_x": {"store_ms": 5.0, "rdflib_ms": 100.0, "ratio": 20.0},
                    "cq02_y": {"store_ms": 7.0, "rdflib_ms": None, "rdflib_timeout_s": 45.0}},
    }
    text = format_pipeline_markdown([fake])
    assert "| pyshacl on the whole graph | > 600 s |" in text
    assert "| validation per trial, parallel (total) | > 1800 s |" in text
    assert "| cq02_y | 7.0 | > 45 s |" in text
    assert "| cq01_x | 5.0 | 100.0 (20.0x) |" in text
    assert "| extraction / baseline throughput | 0.250 |" in text


def test_bench_report_writes_the_tables_between_the_readme_markers(tmp_path):
    from kg.bench import BENCH_END, BENCH_START, replace_marked_block
    from kg.errors import CartkgError

    text = f"# README\n\nbefore\n{BENCH_START}\nold table\n{BENCH_END}\nafter\n"
    new = replace_marked_block(text, "| new | table |\n")
    assert new == f"# README\n\nbefore\n{BENCH_START}\n| new | table |\n{BENCH_END}\nafter\n"
    assert replace_marked_block(new, "| new | table |\n") == new
    with pytest.raises(CartkgError, match="no .* block"):
        replace_marked_block("# README without markers\n", "x")
