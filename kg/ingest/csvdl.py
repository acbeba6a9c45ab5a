"""The ClinicalTrials.gov CSV download (``ctg-studies.csv``), any subset and order of its columns.

The header row names the columns; ``csv_columns.json`` maps the download's names to record fields
(unknown columns are ignored).  Cells: lists joined by ``|`` (conditions, interventions ``TYPE: name``,
phases ``PHASE1|PHASE2``); outcome columns as in the seven-line text; "Study Design" as
``Allocation: NA|Intervention Model: SINGLE_GROUP|Masking: NONE|Primary Purpose: TREATMENT``.

Streaming: records are cut from the text by counting quotes line by line (RFC 4180: a record ends at a
line end outside quotes), so no record longer than :data:`~kg.ingest.detect.MAX_LINE_CHARS` is ever held,
and each record is parsed by the :mod:`csv` module.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO, TextIO

from kg.errors import RecordError
from kg.ingest.detect import MAX_LINE_CHARS, Sniffed, iter_lines, text_stream
from kg.ingest.fields import (
    check_record,
    find_nct_id,
    load_csv_columns,
    parse_typed_name,
    record_label,
    split_joined,
    to_count,
    to_enum,
    to_iso_date,
    to_phases,
)
from kg.ingest.flat import split_column
from kg.records import DesignInfo, Enrollment, Outcome, ReadFailure, Role, Source, TrialRecord, is_nct_id

FORMAT = "csv"
TITLE_COLUMN = "Study Title"
_OUTCOME_COLUMNS: tuple[tuple[str, Role], ...] = (
    ("primary_outcomes", "primary"),
    ("secondary_outcomes", "secondary"),
    ("other_outcomes", "other"),
)
_DESIGN_KEYS = {
    "allocation": "allocation",
    "intervention model": "intervention_model",
    "masking": "masking",
    "primary purpose": "primary_purpose",
}


@dataclass(frozen=True)
class CsvRecord:
    """The text of one CSV record: the physical line it starts on, and whether it was cut at the limit."""

    line: int
    text: str
    length: int
    too_long: bool
    unterminated: bool


def read_csv(stream: BinaryIO, path: str, sniffed: Sniffed) -> Iterator[TrialRecord | ReadFailure]:
    """Yield a record (or a failure) for every data row of a CSV download."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_CHARS + 1))
    stem = PurePath(path).stem if path != "<stdin>" else "stdin"
    records = iter_records(text_stream(stream, sniffed.encoding, newline=""))
    header: list[str] | None = None
    index = 0
    for rec in records:
        if header is None:
            try:
                if rec.too_long or rec.unterminated:
                    raise csv.Error("it is too long or has an unclosed quote")
                header = [name.strip() for name in parse_cells(rec.text, sniffed.delimiter)]
            except csv.Error as exc:
                yield ReadFailure(
                    path, "header", None, f"the header row (line {rec.line}) cannot be read: {exc}"
                )
                return
            continue
        if not rec.text.strip("\r\n"):
            continue  # a blank line is not a record
        try:
            yield parse_row(rec, header, sniffed.delimiter, path, stem, index)
        except RecordError as exc:
            yield ReadFailure(path, exc.record or record_label(index), exc.field, exc.message)
        index += 1


def iter_records(stream: TextIO) -> Iterator[CsvRecord]:
    """Cut the text into CSV records: physical lines are joined while a quoted field is open."""
    parts: list[str] = []
    start = length = quotes = 0
    too_long = False
    for line in iter_lines(stream, MAX_LINE_CHARS):
        if not parts and not too_long:
            start = line.number
        quotes += line.quotes
        length += line.length
        if line.too_long or length > MAX_LINE_CHARS:
            if not too_long:
                parts.append(line.text)
            too_long = True
        else:
            parts.append(line.text)
        if quotes % 2 == 0:
            yield CsvRecord(start, "".join(parts)[:MAX_LINE_CHARS], length, too_long, False)
            parts, length, quotes, too_long = [], 0, 0, False
    if parts or too_long:
        yield CsvRecord(start, "".join(parts)[:MAX_LINE_CHARS], length, too_long, quotes % 2 == 1)


def parse_cells(text: str, delimiter: str) -> list[str]:
    """The cells of one record's text."""
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter, strict=True))
    return rows[0] if rows else []


def parse_row(
    rec: CsvRecord, header: list[str], delimiter: str, path: str, stem: str, index: int
) -> TrialRecord:
    """Build a record from one CSV record; raises RecordError naming the column."""
    if rec.too_long:
        raise _too_long_error(rec, header, delimiter, index)
    if rec.unterminated:
        raise RecordError(
            f"a quoted field opened on line {rec.line} is never closed (truncated file?)",
            record=_label_from_text(rec.text, index),
        )
    try:
        cells = parse_cells(rec.text, delimiter)
    except csv.Error as exc:
        raise RecordError(
            f"line {rec.line}: malformed CSV ({exc})", record=_label_from_text(rec.text, index)
        ) from None
    row = _row_fields(header, cells)
    nct = row.get("nct_id", "").strip()
    label = record_label(index, nct if is_nct_id(nct) else None)
    if len(cells) != len(header):
        raise RecordError(
            f"line {rec.line}: the row has {len(cells)} cells but the header has {len(header)}", record=label
        )
    try:
        return check_record(build_record(row, header, path, stem, index, nct))
    except RecordError as exc:
        exc.record = exc.record or label
        raise


def build_record(
    row: dict[str, str], header: list[str], path: str, stem: str, index: int, nct: str
) -> TrialRecord:
    """Map a row (record field → cell text) to a TrialRecord."""
    columns = _column_of(header)
    if "brief_title" not in row:
        raise RecordError(
            f"the CSV has no {TITLE_COLUMN!r} column (its columns: {', '.join(header)})", field=TITLE_COLUMN
        )
    title = row["brief_title"]
    if not title.strip():
        raise RecordError("the title is empty", field=columns["brief_title"])
    trial_id = nct if is_nct_id(nct) else (find_nct_id(row.get("url")) or f"{stem}-{index + 1}")
    count = to_count(row.get("enrollment"), columns.get("enrollment", "Enrollment"))
    outcomes: tuple[Outcome, ...] = ()
    for key, role in _OUTCOME_COLUMNS:
        outcomes += split_column(row.get(key, ""), role, columns.get(key, key))
    return TrialRecord(
        trial_id=trial_id,
        source=Source(path=path, format=FORMAT, index=index),
        brief_title=title,
        brief_summary=row.get("brief_summary") or None,
        conditions=split_joined(row.get("conditions")),
        interventions=tuple(parse_typed_name(item) for item in split_joined(row.get("interventions"))),
        outcomes=outcomes,
        phases=to_phases(split_joined(row.get("phases"))),
        study_type=to_enum("study_type", row.get("study_type")),
        enrollment=Enrollment(count=count) if count is not None else None,
        design=parse_design(row.get("design")),
        sponsor=(split_joined(row.get("sponsor")) or (None,))[0],
        status=to_enum("status", row.get("status")),
        start_date=to_iso_date(row.get("start_date")),
        completion_date=to_iso_date(row.get("completion_date")),
        last_update=to_iso_date(row.get("last_update")),
    )


def parse_design(text: str | None) -> DesignInfo | None:
    """``Allocation: NA|Intervention Model: SINGLE_GROUP|Masking: NONE|Primary Purpose: TREATMENT``."""
    values: dict[str, str | None] = {}
    for item in split_joined(text):
        key, sep, value = item.partition(":")
        field = _DESIGN_KEYS.get(key.strip().lower())
        if sep and field:
            values[field] = to_enum(field, value)
    return DesignInfo(**values) if values else None


def _row_fields(header: list[str], cells: list[str]) -> dict[str, str]:
    """Record field → cell; the first column that maps to a field wins."""
    mapping = load_csv_columns()["fields"]
    row: dict[str, str] = {}
    for name, cell in zip(header, cells, strict=False):
        field = mapping.get(name)
        if field and field not in row:
            row[field] = cell
    for name in header:  # columns present but missing in a short row still count as present
        field = mapping.get(name)
        if field and field not in row:
            row[field] = ""
    return row


def _column_of(header: list[str]) -> dict[str, str]:
    """Record field → the header name it was read from (for messages)."""
    mapping = load_csv_columns()["fields"]
    out: dict[str, str] = {}
    for name in header:
        field = mapping.get(name)
        if field and field not in out:
            out[field] = name
    return out


def _too_long_error(rec: CsvRecord, header: list[str], delimiter: str, index: int) -> RecordError:
    """Name the column where the over-long record passed the limit, from the part that was kept."""
    try:
        cells = list(csv.reader(io.StringIO(rec.text), delimiter=delimiter))[0]
    except (csv.Error, IndexError):
        cells = []
    column = header[len(cells) - 1] if 0 < len(cells) <= len(header) else None
    row = _row_fields(header, cells[:-1])
    nct = row.get("nct_id", "").strip()
    return RecordError(
        f"the record starting on line {rec.line} is {rec.length:,} characters long, "
        f"over the limit of {MAX_LINE_CHARS:,}",
        field=column,
        record=record_label(index, nct if is_nct_id(nct) else None),
    )


def _label_from_text(text: str, index: int) -> str:
    return record_label(index, find_nct_id(text))
