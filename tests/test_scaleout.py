"""Extraction is a pure per-record function, so it maps onto Dask / Ray / Spark partitions (README,
"Scaling out beyond one machine"): records and extractions pickle, ``extract_record`` on one record gives
what the batched ``cartkg extract`` path gives for it whatever came before, and a Dask bag over process
workers prints the same JSON Lines byte for byte.  The Dask test is skipped where dask is not installed (it
is not a project dependency).  No timing is asserted."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from kg.extract import extract_record, extract_records
from kg.ingest import read_paths
from kg.records import TrialExtraction, TrialRecord

EXAMPLES = Path(__file__).resolve().parents[1] / "data" / "examples"


def json_line(extraction: TrialExtraction) -> str:
    """One line as `cartkg extract` prints it."""
    return json.dumps(extraction.to_json(), ensure_ascii=False, sort_keys=False)


@pytest.fixture(scope="module")
def records() -> list[TrialRecord]:
    """The seeds plus the API v2 samples: 18 records of two formats."""
    items = list(read_paths([str(EXAMPLES / "seeds"), str(EXAMPLES / "ctgov_v2")]))
    assert all(isinstance(r, TrialRecord) for r in items), [r for r in items if not isinstance(r, TrialRecord)]
    return items


@pytest.fixture(scope="module")
def batched(records) -> list[str]:
    """The reference: every record through one `nlp.pipe` stream, as `cartkg extract` runs it."""
    return [json_line(e) for e in extract_records(records)]


def test_records_extractions_and_the_function_pickle(records) -> None:
    extraction = extract_record(records[0])
    assert pickle.loads(pickle.dumps(records[0])) == records[0]
    assert json_line(pickle.loads(pickle.dumps(extraction))) == json_line(extraction)
    assert pickle.loads(pickle.dumps(extract_record)) is extract_record


def test_one_record_at_a_time_in_reverse_order_equals_the_batched_run(records, batched) -> None:
    """No state carries from one record to the next, so any partitioning gives the same lines."""
    one_by_one = [json_line(extract_record(r)) for r in reversed(records)]
    assert one_by_one[::-1] == batched


def test_dask_bag_over_processes_gives_the_batched_lines(records, batched) -> None:
    bag = pytest.importorskip("dask.bag", reason="dask is not a project dependency: pip install 'dask[bag]'")
    lines = bag.from_sequence(records, npartitions=3).map(extract_record).map(json_line)
    assert lines.compute(scheduler="processes", num_workers=2) == batched
