"""Measure how often the outcome splitter gets real outcomes back from their flat CSV form.

The API v2 JSON (``outcomesModule.{primary,secondary,other}Outcomes[]``) and the legacy
XML (``<primary_outcome><measure/><time_frame/><description/>``) give each outcome's
three parts separately.  We join every role's outcomes the CSV way (parts with ", ",
outcomes with "|"), split the column back with :func:`kg.ingest.split.split_outcomes`
and count the outcomes whose measure, description and time frame all come back equal.

usage: python -m kg.ingest.roundtrip [PATH ...] [--show N] [--min RATE]

PATHs are files or folders (searched recursively for ``*.json``, ``*.jsonl``, ``*.xml``);
the default is the bundled ``data/examples/ctgov_v2`` and ``data/examples/ctgov_xml``.
Exit status: 0 ok, 1 rate below ``--min``, 2 no outcome found.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET

from kg.ingest.split import OUTCOME_SEPARATOR, join_outcome, split_outcomes
from kg.records import ROLES, Outcome, Role
from kg.resources import examples_dir

V2_KEYS: dict[str, Role] = {
    "primaryOutcomes": "primary",
    "secondaryOutcomes": "secondary",
    "otherOutcomes": "other",
}
XML_TAGS: dict[str, Role] = {
    "primary_outcome": "primary",
    "secondary_outcome": "secondary",
    "other_outcome": "other",
}
SUFFIXES = (".json", ".jsonl", ".xml")


@dataclass(frozen=True)
class Column:
    """One record's outcomes of one role, as given separately by the source."""

    source: str  # "path#record"
    role: Role
    outcomes: tuple[Outcome, ...]


@dataclass(frozen=True)
class Failure:
    source: str
    expected: Outcome | None
    got: Outcome | None


@dataclass
class Report:
    """Counts per source format plus the failures, in input order."""

    total: int = 0
    exact: int = 0
    by_format: dict[str, list[int]] = field(default_factory=dict)  # format -> [exact, total]
    failures: list[Failure] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.exact / self.total if self.total else 0.0


# ---------------------------------------------------------------- measuring


def measure_roundtrip(paths: Iterable[Path]) -> Report:
    """Join and re-split every outcome column found under ``paths``."""
    report = Report()
    for item in iter_columns(paths):
        if isinstance(item, str):
            report.errors.append(item)
            continue
        check_column(item, report)
    return report


def check_column(column: Column, report: Report) -> None:
    """Split the joined column back and count exact outcomes (matched by position)."""
    flat = OUTCOME_SEPARATOR.join(
        join_outcome(o.measure, o.description, o.time_frame) for o in column.outcomes
    )
    got = split_outcomes(flat, column.role)
    fmt = "xml" if column.source.split("#")[0].endswith(".xml") else "json"
    counts = report.by_format.setdefault(fmt, [0, 0])
    for k, expected in enumerate(column.outcomes):
        predicted = got[k] if k < len(got) else None
        ok = predicted == expected
        report.total += 1
        counts[1] += 1
        if ok:
            report.exact += 1
            counts[0] += 1
        else:
            report.failures.append(Failure(column.source, expected, predicted))
    for extra in got[len(column.outcomes) :]:
        report.failures.append(Failure(column.source, None, extra))


# ---------------------------------------------------------------- reading the sources


def iter_columns(paths: Iterable[Path]) -> Iterator[Column | str]:
    """Yield outcome columns from every JSON/XML file under ``paths``; unreadable files yield a message."""
    for path in iter_files(paths):
        try:
            if path.suffix == ".xml":
                yield from columns_from_xml(path)
            else:
                yield from columns_from_json(path)
        except (OSError, ValueError, SafeET.ParseError) as exc:  # one bad file never stops the run
            yield f"{path}: cannot read outcomes: {exc}"


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files with a known suffix, folders searched recursively, in sorted order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        else:
            yield path


def columns_from_json(path: Path) -> Iterator[Column]:
    """API v2 JSON: one study, a list, a ``{"studies": [...]}`` page, or JSON Lines (entries without a
    measure are skipped)."""
    for index, study in enumerate(load_studies(path.read_text(encoding="utf-8"))):
        module = (study.get("protocolSection") or {}).get("outcomesModule") or {}
        for key, role in V2_KEYS.items():
            items = module.get(key) if isinstance(module, dict) else None
            outcomes = tuple(
                _outcome(role, o.get("measure"), o.get("description"), o.get("timeFrame"))
                for o in (items if isinstance(items, list) else [])
                if isinstance(o, dict) and o.get("measure")
            )
            if outcomes:
                yield Column(f"{path}#{index}", role, outcomes)


def load_studies(text: str) -> list[dict[str, Any]]:
    """The study objects of a JSON document or of JSON Lines."""
    try:
        docs: list[Any] = [json.loads(text)]
    except json.JSONDecodeError:
        docs = [json.loads(line) for line in text.splitlines() if line.strip()]
    studies: list[dict[str, Any]] = []
    for doc in docs:
        if isinstance(doc, dict) and isinstance(doc.get("studies"), list):
            studies.extend(s for s in doc["studies"] if isinstance(s, dict))
        elif isinstance(doc, list):
            studies.extend(s for s in doc if isinstance(s, dict))
        elif isinstance(doc, dict):
            studies.append(doc)
    return studies


def columns_from_xml(path: Path) -> Iterator[Column]:
    """Legacy ``clinical_study`` XML; textblock whitespace collapsed to single spaces."""
    root = SafeET.parse(path, forbid_dtd=True).getroot()
    by_role: dict[Role, list[Outcome]] = {role: [] for role in ROLES}
    for tag, role in XML_TAGS.items():
        for node in root.iter(tag):
            by_role[role].append(
                _outcome(
                    role,
                    _collapse(node.findtext("measure")),
                    _collapse(node.findtext("description")),
                    _collapse(node.findtext("time_frame")),
                )
            )
    for role in ROLES:
        if by_role[role]:
            yield Column(f"{path}#0", role, tuple(by_role[role]))


def _collapse(text: str | None) -> str | None:
    return re.sub(r"\s+", " ", text).strip() if text else None


def _outcome(role: Role, measure: Any, description: Any, time_frame: Any) -> Outcome:
    return Outcome(
        role=role,
        measure=str(measure or ""),
        description=str(description) if description else None,
        time_frame=str(time_frame) if time_frame else None,
    )


# ---------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kg.ingest.roundtrip", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "paths", nargs="*", type=Path, help="JSON/XML files or folders (default: bundled samples)"
    )
    parser.add_argument("--show", type=int, default=50, help="print at most N failures (default 50)")
    parser.add_argument("--min", type=float, default=None, help="exit 1 when the exact rate is below this")
    args = parser.parse_args(argv)
    paths = args.paths or [examples_dir() / "ctgov_v2", examples_dir() / "ctgov_xml"]
    report = measure_roundtrip(paths)
    print_report(report, args.show)
    if report.total == 0:
        return 2
    return 1 if args.min is not None and report.rate < args.min else 0


def print_report(report: Report, show: int) -> None:
    """Rate first, then per format, then the failures (expected vs got)."""
    print(f"round-trip exact: {report.exact}/{report.total} outcomes = {report.rate:.2%}")
    for fmt, (exact, total) in sorted(report.by_format.items()):
        print(f"  {fmt}: {exact}/{total} = {exact / total:.2%}")
    for message in report.errors:
        print(f"error: {message}", file=sys.stderr)
    for failure in report.failures[:show]:
        print(f"\n{failure.source}")
        print(f"  expected: {_show(failure.expected)}")
        print(f"  got:      {_show(failure.got)}")
    if len(report.failures) > show:
        print(f"\n… {len(report.failures) - show} more failures (use --show)")


def _show(outcome: Outcome | None) -> str:
    if outcome is None:
        return "(nothing)"
    return f"M={outcome.measure!r} | D={outcome.description!r} | T={outcome.time_frame!r}"


if __name__ == "__main__":
    sys.exit(main())
