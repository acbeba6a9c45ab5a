"""The committed corpus of malformed files (``malformed/``): each is read without an exception and gives
exactly the records and failures listed in ``malformed/cases.json`` (record, field, words of the message)."""

from __future__ import annotations

import json

import pytest

from kg.ingest import read_paths
from kg.records import ReadFailure

from .make_malformed import OUT, cases

CASES = json.loads((OUT / "cases.json").read_text(encoding="utf-8"))


def test_malformed_corpus_is_complete_and_regenerable():
    files = sorted(p.name for p in OUT.iterdir() if p.name != "cases.json")
    assert len(files) >= 40
    assert files == sorted(CASES)
    for name, data in cases().items():
        assert (OUT / name).read_bytes() == data, f"{name}: run python -m tests.robustness.make_malformed"


@pytest.mark.parametrize("name", sorted(CASES))
def test_malformed_case_gives_its_expected_failures(name):
    path = str(OUT / name)
    expected = CASES[name]
    items = list(read_paths([path]))
    records = [i.trial_id for i in items if not isinstance(i, ReadFailure)]
    failures = [i for i in items if isinstance(i, ReadFailure)]
    assert records == expected["records"]
    assert len(failures) == len(expected["failures"]), [str(f) for f in failures]
    assert expected["records"] or expected["failures"], "every case yields something"
    for failure, want in zip(failures, expected["failures"], strict=True):
        assert failure.path == path
        assert (failure.record, failure.field) == (want["record"], want["field"]), str(failure)
        assert want["contains"] in failure.message, str(failure)
        assert str(failure).startswith(f"{path}: record {want['record']}")
