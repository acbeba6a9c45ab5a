"""The seven-line text: one trial per file, one field per line.

Lines, in order: title; brief summary; conditions (joined by ``|``); interventions (``TYPE: name``
joined by ``|``); primary outcomes; secondary outcomes; detailed description.  Outcome lines join each
outcome's parts with ``", "`` and outcomes with ``"|"``; :func:`kg.ingest.split.split_outcomes` splits
them back.  A line ends at ``\\n`` (``\\r\\n`` too) and a final newline only ends the last line, so a
file has exactly seven lines: ``"l1\\n…\\nl7"`` or ``"l1\\n…\\nl7\\n"``; an empty seventh line (no detailed
description) is written ``"l1\\n…\\nl6\\n\\n"`` (``"l1\\n…\\nl6\\n"`` is six lines).  ``trial_id`` is the
first NCT number anywhere in the text, else the file's stem.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath
from typing import BinaryIO

from kg.errors import RecordError
from kg.ingest.detect import MAX_LINE_CHARS, Line, Sniffed, iter_lines, strip_newline, text_stream
from kg.ingest.fields import check_record, find_nct_id, parse_typed_name, split_joined
from kg.ingest.split import split_outcomes
from kg.records import Outcome, ReadFailure, Role, Source, TrialRecord

FORMAT = "text"
LINE_FIELDS = (
    "brief_title",
    "brief_summary",
    "conditions",
    "interventions",
    "outcomes (primary)",
    "outcomes (secondary)",
    "detailed_description",
)
"""The field each line holds, as failures name it."""


def read_flat(stream: BinaryIO, path: str, sniffed: Sniffed) -> Iterator[TrialRecord | ReadFailure]:
    """Yield the one record of a seven-line text file, or one failure that names the line and field."""
    stem = PurePath(path).stem if path != "<stdin>" else "stdin"
    lines: list[Line] = []
    count = 0
    for line in iter_lines(text_stream(stream, sniffed.encoding, newline="\n"), MAX_LINE_CHARS):
        count += 1
        if count <= len(LINE_FIELDS):
            lines.append(line)
    texts = [strip_newline(line.text) for line in lines]
    trial_id = _find_trial_id(texts) or stem
    try:
        yield parse_lines(lines, texts, count, trial_id, path)
    except RecordError as exc:
        yield ReadFailure(path=path, record=trial_id, field=exc.field, message=exc.message)


def parse_lines(lines: list[Line], texts: list[str], count: int, trial_id: str, path: str) -> TrialRecord:
    """Build the record from the (at most seven) lines read; ``count`` is the file's full line count."""
    for line in lines:
        if line.too_long:
            raise RecordError(
                f"line {line.number} is {line.length:,} characters long, "
                f"over the limit of {MAX_LINE_CHARS:,}",
                field=LINE_FIELDS[line.number - 1],
            )
    if count != len(LINE_FIELDS):
        raise _line_count_error(count)
    title, summary, conditions, interventions, primary, secondary, detailed = texts
    if not title.strip():
        raise RecordError("line 1 (the title) is empty", field="brief_title")
    record = TrialRecord(
        trial_id=trial_id,
        source=Source(path=path, format=FORMAT, index=0),
        brief_title=title,
        brief_summary=summary or None,
        detailed_description=detailed or None,
        conditions=split_joined(conditions),
        interventions=tuple(parse_typed_name(item) for item in split_joined(interventions)),
        outcomes=split_column(primary, "primary", LINE_FIELDS[4])
        + split_column(secondary, "secondary", LINE_FIELDS[5]),
    )
    return check_record(record)


def split_column(text: str, role: Role, field: str) -> tuple[Outcome, ...]:
    """Outcomes of one joined outcome column; a splitter crash becomes this record's failure."""
    if not text.strip():
        return ()
    try:
        return tuple(split_outcomes(text, role))
    except Exception as exc:  # noqa: BLE001 - one record's odd text must not stop the batch
        raise RecordError(f"could not split the outcomes ({type(exc).__name__}: {exc})", field=field) from exc


def _line_count_error(count: int) -> RecordError:
    expected = len(LINE_FIELDS)
    layout = (
        "title, brief summary, conditions, interventions, primary outcomes, secondary outcomes, description"
    )
    if count < expected:
        missing = f"line {expected} is" if count == expected - 1 else f"lines {count + 1}-{expected} are"
        return RecordError(
            f"has {count} line{'s' if count != 1 else ''}, expected exactly {expected} ({layout}); "
            f"{missing} missing",
            field=LINE_FIELDS[count],
        )
    return RecordError(
        f"has {count} lines, expected exactly {expected} ({layout}); lines {expected + 1}-{count} are extra",
        field=f"line {expected + 1}",
    )


def _find_trial_id(texts: list[str]) -> str | None:
    for text in texts:
        found = find_nct_id(text)
        if found:
            return found
    return None
