"""Readers: every ClinicalTrials.gov format into :class:`kg.records.TrialRecord`.

``read_paths(paths)`` streams ``TrialRecord | ReadFailure`` items from files, folders (recursively),
or ``-`` (standard input); the format of each file is detected from its content
(:mod:`kg.ingest.detect`), and gzip-compressed files and zip archives are opened transparently.

* Folders are walked in sorted order; hidden files and folders are skipped, and so are files whose
  names do not end in a record suffix (:data:`RECORD_SUFFIXES`, also inside ``.gz``), so a README or
  an image beside the data is not read as a record.  A file named on the command line is always read.
* A failure (:class:`~kg.records.ReadFailure`) stands in the stream for the record, or the rest of the
  file, that could not be read; it names the file, the record (NCT number, or ``#index`` 0-based, or
  ``(file)`` when the whole file is unreadable) and the field.  Nothing is dropped without one: a file
  that holds no record at all (a CSV with only its header, ``{"studies": []}``) is reported too.
"""

from __future__ import annotations

import gzip
import os
import sys
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePath
from typing import Any, BinaryIO

from kg.errors import RecordError
from kg.ingest.csvdl import read_csv
from kg.ingest.detect import GZIP_MAGIC, HEAD_BYTES, ZIP_MAGIC, Sniffed, peek_stream, sniff_format
from kg.ingest.flat import read_flat
from kg.ingest.v2json import read_json, read_jsonl
from kg.ingest.xml import read_xml
from kg.records import ReadFailure, TrialRecord

__all__ = ["RECORD_SUFFIXES", "read_paths", "read_stream"]

Reader = Callable[[BinaryIO, str, Sniffed], Iterator[TrialRecord | ReadFailure]]
READERS: dict[str, Reader] = {
    "text": read_flat,
    "csv": read_csv,
    "json": read_json,
    "jsonl": read_jsonl,
    "xml": read_xml,
}
FORMAT_NAMES = {
    "text": "seven-line text",
    "csv": "a CSV download",
    "json": "API v2 JSON",
    "jsonl": "API v2 JSON Lines",
    "xml": "legacy XML",
}
RECORD_SUFFIXES = frozenset({".txt", ".csv", ".tsv", ".json", ".jsonl", ".ndjson", ".xml", ".zip"})
"""File name endings read when walking a folder (each also with ``.gz`` after it)."""

STDIN = "<stdin>"
WHOLE_FILE = "(file)"


def read_paths(paths: Sequence[str]) -> Iterator[TrialRecord | ReadFailure]:
    """Records and failures from every path in order: files, folders (recursively) and ``-`` for stdin."""
    for path in paths:
        if path == "-":
            yield from read_stream(_stdin_bytes(), STDIN)
        elif os.path.isdir(path):
            for file in iter_files(path):
                yield from read_file(file)
        else:
            yield from read_file(path)


def iter_files(folder: str) -> Iterator[str]:
    """Record files under ``folder``, recursively, in sorted order, hidden entries skipped."""
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and is_record_file(name):
                yield os.path.join(root, name)


def is_record_file(name: str) -> bool:
    """Whether a folder walk reads this file name."""
    p = PurePath(name.lower())
    if p.suffix == ".gz":
        p = PurePath(p.stem)
    return p.suffix in RECORD_SUFFIXES


def read_file(path: str) -> Iterator[TrialRecord | ReadFailure]:
    """Records of one file (any format, gzip or zip included)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed below; the generator may be abandoned
    except OSError as exc:
        yield ReadFailure(path, WHOLE_FILE, None, f"cannot open: {exc.strerror or exc}")
        return
    with handle:
        if handle.seekable():  # a named pipe (e.g. /dev/stdin) is read as a stream
            head = handle.read(len(ZIP_MAGIC))
            handle.seek(0)
            if head == ZIP_MAGIC:
                yield from read_zip(handle, path)
                return
        yield from read_stream(handle, path)


def read_zip(handle: BinaryIO, path: str) -> Iterator[TrialRecord | ReadFailure]:
    """Every record member of a zip archive, in name order; members are named ``archive.zip!member``."""
    try:
        archive = zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, OSError) as exc:
        yield ReadFailure(path, WHOLE_FILE, None, f"unreadable zip archive: {exc}")
        return
    with archive:
        names = sorted(
            info.filename
            for info in archive.infolist()
            if not info.is_dir()
            and is_record_file(info.filename)
            and not PurePath(info.filename).name.startswith(".")
        )
        for name in names:
            member = f"{path}!{name}"
            try:
                with archive.open(name) as stream:
                    yield from read_stream(stream, member)  # type: ignore[arg-type]
            except (zipfile.BadZipFile, OSError, RuntimeError) as exc:
                yield ReadFailure(member, WHOLE_FILE, None, f"unreadable zip member: {exc}")


def read_stream(stream: BinaryIO, path: str) -> Iterator[TrialRecord | ReadFailure]:
    """Records of one byte stream: detect the format from its content and hand it to that reader."""
    count = 0
    try:
        head, stream = peek_stream(stream)
        if head.startswith(GZIP_MAGIC):
            yield from read_stream(gzip.GzipFile(fileobj=stream, mode="rb"), path)  # type: ignore[arg-type]
            return
        if head.startswith(ZIP_MAGIC):
            yield ReadFailure(
                path, WHOLE_FILE, None, "a zip archive can be read from a file path, not a stream"
            )
            return
        try:
            sniffed = sniff_format(head, path, complete=len(head) < HEAD_BYTES)
        except RecordError as exc:
            yield ReadFailure(path, WHOLE_FILE, exc.field, exc.message)
            return
        for item in READERS[sniffed.format](stream, path, sniffed):
            count += 1
            yield item
        if count == 0:
            yield ReadFailure(
                path, WHOLE_FILE, None, f"no records found (read as {FORMAT_NAMES[sniffed.format]})"
            )
    except (OSError, EOFError, zlib.error, UnicodeError) as exc:
        yield ReadFailure(path, f"#{count}", None, f"reading stopped after {count} records: {_describe(exc)}")


def _stdin_bytes() -> BinaryIO:
    stdin: Any = sys.stdin
    return stdin.buffer if hasattr(stdin, "buffer") else stdin


def _describe(exc: BaseException) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return f"cannot decode as {exc.encoding} ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"
