"""Small helpers shared by the reader tests."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from kg.ingest import read_paths
from kg.records import ReadFailure, TrialRecord

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ingest"


def read_all(*paths: str | Path) -> tuple[list[TrialRecord], list[ReadFailure]]:
    """Read paths and separate records from failures (keeping each list in stream order)."""
    records: list[TrialRecord] = []
    failures: list[ReadFailure] = []
    for item in read_paths([str(p) for p in paths]):
        (failures if isinstance(item, ReadFailure) else records).append(item)  # type: ignore[arg-type]
    return records, failures


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    """Write a test input file (text as UTF-8) and return its path."""
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def seven_lines(lines: Sequence[str]) -> str:
    """Join lines the way the seven-line text does (no final newline)."""
    return "\n".join(lines)


class CountingReader(io.RawIOBase):
    """A byte stream that records how many bytes have been read from it (to prove a reader streams)."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.consumed = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 4096))
        buffer[: len(chunk)] = chunk
        self.consumed += len(chunk)
        return len(chunk)
