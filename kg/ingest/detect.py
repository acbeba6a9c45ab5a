"""Opening inputs and telling their format from the content (the file name only breaks ties).

A file's first :data:`HEAD_BYTES` are read and looked at; then the stream is handed on from its
start (standard input included, which cannot seek).  The text encoding is UTF-8 (a byte-order
mark is allowed), or UTF-16 / UTF-32 *with* a byte-order mark; anything else is refused with a
message rather than guessed.  Formats:

* ``xml``   — starts with ``<``: legacy ``clinical_study`` XML;
* ``json``  — starts with ``{`` or ``[`` and is one document (a study, a list, an API v2 page);
* ``jsonl`` — one JSON value per line (JSON Lines);
* ``csv``   — a first line whose cells include a ClinicalTrials.gov download column name;
* ``text``  — anything else: the seven-line text.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath
from typing import BinaryIO, TextIO

from kg.errors import RecordError
from kg.ingest.fields import load_csv_columns

HEAD_BYTES = 64 * 1024
"""How much of a file format detection looks at."""

MAX_LINE_CHARS = 16 * 1024 * 1024
"""Longest line (or CSV record) a line-based reader accepts; longer ones fail without being held whole."""

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"

# Keys an API v2 study object starts with (a JSON Lines file of studies begins with one of them).
STUDY_KEYS = frozenset(
    {
        "protocolSection",
        "resultsSection",
        "annotationSection",
        "documentSection",
        "derivedSection",
        "hasResults",
    }
)
DISTINCT_COLUMNS = frozenset({"NCT Number", "Study Title", "Study URL"})
JSONL_SUFFIXES = frozenset({".jsonl", ".ndjson"})
CSV_SUFFIXES = frozenset({".csv", ".tsv"})
_FIRST_KEY = re.compile(r'\s*\{\s*"([^"\\]*)"')
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


@dataclass(frozen=True)
class Sniffed:
    """What detection found: the format, the text encoding and (for CSV) the delimiter."""

    format: str
    encoding: str = "utf-8"
    delimiter: str = ","


@dataclass(frozen=True)
class Line:
    """One physical line: its 1-based number, text (terminator kept; cut at the limit when too long)."""

    number: int
    text: str
    length: int  # full length in characters, also when ``text`` was cut
    too_long: bool
    quotes: int  # number of '"' in the whole line (CSV uses it to find where a record ends)


class _Prefixed(io.RawIOBase):
    """A raw stream that serves ``head`` first and then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def peek_stream(stream: BinaryIO, size: int = HEAD_BYTES) -> tuple[bytes, BinaryIO]:
    """Read up to ``size`` bytes for detection and return them with a stream that starts from byte 0."""
    head = _read_exactly(stream, size)
    return head, io.BufferedReader(_Prefixed(head, stream), buffer_size=HEAD_BYTES)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    chunks: list[bytes] = []
    got = 0
    while got < size:
        chunk = stream.read(size - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def detect_encoding(head: bytes) -> str:
    """The codec a byte-order mark names, else UTF-8."""
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    return "utf-8"


def sniff_format(head: bytes, name: str, *, complete: bool) -> Sniffed:
    """Tell the format of a file from its first bytes; ``complete`` says ``head`` is the whole file.

    Raises :class:`RecordError` (field None) for an empty, binary or undecodable file.
    """
    encoding = detect_encoding(head)
    text = _decode_head(head, encoding, complete=complete)
    binary = _binary_problem(text, head)
    if binary:
        if _has_json_object_line(text, complete=complete):
            return Sniffed("jsonl", encoding)  # JSON Lines with a binary line: that line fails alone
        raise RecordError(binary)
    stripped = text.lstrip()
    if not stripped:
        if not head:
            raise RecordError("the file is empty")
        if complete:
            raise RecordError("the file holds only whitespace, no record")
        return Sniffed("text", encoding)
    suffix = PurePath(name).suffix.lower()
    if stripped[0] == "<":
        return Sniffed("xml", encoding)
    if stripped[0] in "{[":
        return Sniffed(_json_kind(stripped, suffix, complete=complete), encoding)
    if complete and _is_json_scalar(stripped):
        return Sniffed("json", encoding)  # `42`, `"x"`: JSON, refused by the reader as not a study
    delimiter = _csv_delimiter(text, suffix)
    if delimiter and not (complete and _is_seven_lines(text) and not _has_csv_header(text)):
        return Sniffed("csv", encoding, delimiter)
    return Sniffed("text", encoding)


def _decode_head(head: bytes, encoding: str, *, complete: bool) -> str:
    errors = "surrogateescape" if encoding.startswith("utf-8") else "strict"
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    try:
        text = decoder.decode(head, final=complete)
    except UnicodeDecodeError as exc:
        raise RecordError(f"not valid {encoding.upper()} text ({exc.reason} at byte {exc.start})") from None
    return text


_CONTROL = re.compile("[\\udc80-\\udcff\\x00-\\x08\\x0e-\\x1f]")
"""Undecodable bytes (kept as surrogates) and control characters other than whitespace."""


def _binary_problem(text: str, head: bytes) -> str | None:
    """Why the start of a file reads as binary content rather than text, or None."""
    sample = text[:8192]
    if "\x00" in sample:
        if _looks_like_utf16(head):
            return (
                "looks like UTF-16 without a byte-order mark; "
                "save it as UTF-8 (or UTF-16 with a byte-order mark)"
            )
        return f"binary content (NUL byte at character {sample.index(chr(0))}), not a record format"
    bad = len(_CONTROL.findall(sample))
    if bad > max(8, len(sample) // 20):
        return (
            f"binary content ({bad} undecodable or control characters in the first {len(sample)}), "
            "not a record format"
        )
    return None


def _has_json_object_line(text: str, *, complete: bool) -> bool:
    """Whether a line of ``text`` is a whole JSON object (the last only if ``text`` is the whole file)."""
    lines = text.split("\n")
    for line in lines if complete else lines[:-1]:
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                if isinstance(json.loads(line), dict):
                    return True
            except ValueError:
                continue
    return False


def _is_json_scalar(text: str) -> bool:
    """Whether ``text`` is one JSON string, number, boolean or null (and nothing else)."""
    if text[0] not in '"-0123456789tfn':
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return not isinstance(value, (dict, list))


def _looks_like_utf16(head: bytes) -> bool:
    sample = head[:512]
    if len(sample) < 4:
        return False
    even, odd = sample[0::2], sample[1::2]
    return even.count(0) > len(even) * 0.6 or odd.count(0) > len(odd) * 0.6


def _json_kind(text: str, suffix: str, *, complete: bool) -> str:
    """``jsonl`` when the first line is a complete JSON value (or a long single study), else ``json``."""
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    newline = text.find("\n")
    if newline < 0:
        if complete:
            return "json"
        # A first line longer than the head: a study per line streams by line; a page or list by JSON events.
        m = _FIRST_KEY.match(text)
        return "jsonl" if m and m.group(1) in STUDY_KEYS else "json"
    first, rest = text[:newline].strip(), text[newline + 1 :].lstrip()
    if not rest:
        return "json"
    try:
        json.loads(first)
    except ValueError:
        # A broken first record of a JSON Lines file still ends its line with "}".
        return "jsonl" if first.endswith("}") and rest[:1] == "{" else "json"
    return "jsonl"


def _csv_delimiter(text: str, suffix: str) -> str | None:
    """The delimiter when the first line reads as a download header, or the file is named .csv/.tsv."""
    found = _has_csv_header(text)
    if found:
        return found
    if suffix in CSV_SUFFIXES:
        return "\t" if suffix == ".tsv" else ","
    return None


def _has_csv_header(text: str) -> str | None:
    """The delimiter when the first line reads as a ClinicalTrials.gov CSV/TSV header, else None."""
    first = text.split("\n", 1)[0].rstrip("\r")
    known = set(load_csv_columns()["known"])
    for delimiter in (",", "\t"):
        try:
            cells = next(csv.reader([first], delimiter=delimiter))
        except (csv.Error, StopIteration):
            continue
        hits = sum(1 for cell in cells if cell in known)
        if hits >= 2 or (hits == 1 and len(cells) == 1 and cells[0] in DISTINCT_COLUMNS):
            return delimiter
    return None


def _is_seven_lines(text: str) -> bool:
    """Whether a whole file has exactly seven lines (a final newline ends the last one)."""
    body = text[:-1] if text.endswith("\n") else text
    return body.count("\n") == 6


def text_stream(stream: BinaryIO, encoding: str, newline: str | None) -> TextIO:
    """Decode a byte stream; undecodable UTF-8 bytes are kept as surrogates and refused per field later."""
    errors = "surrogateescape" if encoding.startswith("utf-8") else "strict"
    return io.TextIOWrapper(stream, encoding=encoding, errors=errors, newline=newline)


def iter_lines(stream: TextIO, limit: int = MAX_LINE_CHARS) -> Iterator[Line]:
    """Physical lines, never holding more than ``limit`` characters of one line in memory."""
    number = 0
    while True:
        text = stream.readline(limit + 1)
        if not text:
            return
        number += 1
        if len(text) <= limit or text.endswith(("\n", "\r")):
            yield Line(number, text, len(text), False, text.count('"'))
            continue
        length, quotes = len(text), text.count('"')
        while True:
            chunk = stream.readline(1 << 20)
            if not chunk:
                break
            length += len(chunk)
            quotes += chunk.count('"')
            if chunk.endswith(("\n", "\r")):
                break
        yield Line(number, text[:limit], length, True, quotes)


def strip_newline(text: str) -> str:
    """A line without its terminator (``\\n``, ``\\r\\n`` or ``\\r``)."""
    if text.endswith("\n"):
        text = text[:-1]
    if text.endswith("\r"):
        text = text[:-1]
    return text
