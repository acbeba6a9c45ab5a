"""Readers: every ClinicalTrials.gov format into :class:`kg.records.TrialRecord`.

``read_paths(paths)`` streams ``TrialRecord | ReadFailure`` items from files, folders
(recursively), or ``-`` (stdin); the format of each file is detected from its content.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from kg.records import ReadFailure, TrialRecord


def read_paths(paths: Sequence[str]) -> Iterator[TrialRecord | ReadFailure]:
    raise NotImplementedError("readers are being written (issue 2)")
