"""Bundled example records for the extractor tests, read with the project's own readers."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from kg.ingest import read_paths
from kg.records import ReadFailure, TrialRecord

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "examples"


@cache
def read_records(folder: str) -> tuple[TrialRecord, ...]:
    """All records of ``data/examples/<folder>``, sorted by trial id (a read failure fails the test)."""
    items = list(read_paths([str(EXAMPLES / folder)]))
    failures = [str(i) for i in items if isinstance(i, ReadFailure)]
    assert not failures, failures
    return tuple(sorted((i for i in items if isinstance(i, TrialRecord)), key=lambda r: r.trial_id))


def record(folder: str, trial_id: str) -> TrialRecord:
    return next(r for r in read_records(folder) if r.trial_id == trial_id)
