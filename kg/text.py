"""Text normalization kept apart from the original, with an offset map back to it.

The registry's text carries Markdown escapes (``\\&``, ``\\^``, ``\\~``…), mojibake
("TCRÎ¶" for "TCRζ") and full-width punctuation ("，（）").  Extraction runs on a
normalized copy; :class:`NormalizedText` maps every span of the copy back to the
span of the original, so evidence always quotes the text exactly as read.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass

import ftfy

# The registry renders its text as Markdown and escapes these characters with a backslash.
MARKDOWN_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!&^~<>|=])")

# Full-width and other look-alike punctuation matched as ASCII (one character each, so offsets stay 1:1).
FULLWIDTH = {
    "，": ",",
    "（": "(",
    "）": ")",
    "：": ":",
    "；": ";",
    "。": ".",
    "！": "!",
    "？": "?",
    "［": "[",
    "］": "]",
    "｛": "{",
    "｝": "}",
    "／": "/",
    "－": "-",
    "＋": "+",
    "～": "~",
    "＝": "=",
    "＜": "<",
    "＞": ">",
    "％": "%",
    "＆": "&",
    "　": " ",
    "“": '"',
    "”": '"',
    "‘": "'",
    "’": "'",
    "‐": "-",
    "‑": "-",
    "‒": "-",
    "–": "-",
    "—": "-",
    "−": "-",
    "\u00a0": " ",
    "\u200b": "",
}


@dataclass(frozen=True)
class NormalizedText:
    """A normalized copy of ``original`` and, per normalized character, its original span."""

    original: str
    text: str
    starts: tuple[int, ...]  # len(text) + 1 entries: original offset where normalized char i starts
    ends: tuple[int, ...]  # len(text) + 1 entries: original offset where normalized char i ends

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map the normalized span ``[start, end)`` to the original span it came from."""
        if not 0 <= start <= end <= len(self.text):
            raise ValueError(f"span {start}:{end} outside normalized text of length {len(self.text)}")
        if start == end:
            pos = self.starts[start]
            return pos, pos
        return self.starts[start], self.ends[end - 1]

    def original_slice(self, start: int, end: int) -> str:
        ostart, oend = self.to_original(start, end)
        return self.original[ostart:oend]


def normalize(original: str) -> NormalizedText:
    """Normalize ``original``: fix mojibake, undo Markdown escapes, map full-width punctuation."""
    # Each step produces (new_text, spans) where spans[i] is the [start, end) of char i in its input.
    # ``spans is None`` stands for the identity map (the common case: plain text needs no step).
    text = original
    spans: list[tuple[int, int]] | None = None

    fixed = _fix_mojibake(text)
    if fixed != text:
        text, spans = _compose(spans or _identity(text), _align(text, fixed), fixed)

    if "\\" in text:
        step_text, step_spans = _undo_escapes(text)
        if step_text != text:
            text, spans = _compose(spans or _identity(text), step_spans, step_text)

    if not text.isascii():
        step_text, step_spans, changed = _map_characters(text)
        if changed:
            text, spans = _compose(spans or _identity(text), step_spans, step_text)

    if spans is None:
        n = len(original)
        return NormalizedText(original, original, tuple(range(n + 1)), tuple(range(1, n + 1)) + (n,))
    starts = tuple(s for s, _ in spans) + (len(original),)
    ends = tuple(e for _, e in spans) + (len(original),)
    return NormalizedText(original=original, text=text, starts=starts, ends=ends)


def _identity(text: str) -> list[tuple[int, int]]:
    return [(i, i + 1) for i in range(len(text))]


def normalize_text(original: str) -> str:
    """Just the normalized string (no offset map)."""
    return normalize(original).text


def undo_escapes(text: str) -> str:
    """Undo the registry's Markdown backslash escapes (``\\&`` → ``&``)."""
    return MARKDOWN_ESCAPE.sub(r"\1", text)


def _fix_mojibake(text: str) -> str:
    if text.isascii():
        return text
    return ftfy.fix_text(
        text,
        unescape_html=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_line_breaks=False,
        normalization=None,
        explain=False,
    )


def _undo_escapes(text: str) -> tuple[str, list[tuple[int, int]]]:
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    pos = 0
    for m in MARKDOWN_ESCAPE.finditer(text):
        for i in range(pos, m.start()):
            out.append(text[i])
            spans.append((i, i + 1))
        out.append(m.group(1))
        spans.append((m.start(), m.end()))  # the escaped char stands for backslash + char
        pos = m.end()
    for i in range(pos, len(text)):
        out.append(text[i])
        spans.append((i, i + 1))
    return "".join(out), spans


def _map_characters(text: str) -> tuple[str, list[tuple[int, int]], bool]:
    """Full-width punctuation to ASCII and each character NFC; ``changed`` says whether anything did."""
    out: list[str] = []
    spans: list[tuple[int, int]] = []
    changed = False
    for i, ch in enumerate(text):
        repl = FULLWIDTH.get(ch)
        if repl is None:
            repl = unicodedata.normalize("NFC", ch) if not ch.isascii() else ch
        if repl != ch:
            changed = True
        for r in repl:
            out.append(r)
            spans.append((i, i + 1))
    return "".join(out), spans, changed


def _align(old: str, new: str) -> list[tuple[int, int]]:
    """For each char of ``new``, the span of ``old`` it corresponds to (via a diff of the two)."""
    spans: list[tuple[int, int]] = []
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            spans.extend((i1 + k, i1 + k + 1) for k in range(j2 - j1))
        elif tag in ("replace", "insert"):
            # every new char of a replaced block points at the whole old block
            spans.extend((i1, max(i2, i1)) for _ in range(j2 - j1))
        # "delete": old chars vanish; nothing in new points at them
    return spans


def _compose(
    prev: list[tuple[int, int]], step: list[tuple[int, int]], new_text: str
) -> tuple[str, list[tuple[int, int]]]:
    """Chain a step's spans (into the previous text) with the previous spans (into the original)."""
    composed: list[tuple[int, int]] = []
    for s, e in step:
        if s >= len(prev):
            last = prev[-1][1] if prev else 0
            composed.append((last, last))
        elif e <= s:
            composed.append((prev[s][0], prev[s][0]))
        else:
            composed.append((prev[s][0], prev[e - 1][1]))
    return new_text, composed
