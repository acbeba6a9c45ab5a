"""Reading an RDF file a user hands us, safely: nothing is fetched and no XML entity is expanded.

``load_rdf(path)`` loads ``.ttl .nt .nq .trig .jsonld .rdf .owl`` files into an in-memory Oxigraph store
after two checks that run before any parser sees the file:

* RDF/XML (``.rdf``, ``.owl``, ``.xml``) with a document type declaration (``<!DOCTYPE``) or an entity
  declaration (``<!ENTITY``) in its prolog is refused: entities can expand without limit ("billion
  laughs") or name local files and URLs (XXE).  RDF/XML never needs a DTD.
* JSON-LD whose ``@context`` (anywhere in the document, scoped contexts included) or ``@import`` is a
  reference — an ``http(s):``, ``file:`` or relative IRI — is refused: resolving it would make a request
  or read a local file.  Inline context objects (like the one ``cartkg export -f jsonld`` writes) are fine.

Both checks stream the file (the XML prolog only; JSON-LD with ``ijson``), so a refusal is immediate and
memory stays small whatever the file's size.  Every refusal is an :class:`UnsafeRdf` (a ``UsageError``,
exit code 2) naming the file and what to change.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import ijson
import pyoxigraph as ox

from kg.errors import UsageError

__all__ = ["RDF_FORMATS", "UnsafeRdf", "check_jsonld", "check_rdf", "check_rdfxml", "load_rdf", "rdf_format"]

RDF_FORMATS: dict[str, ox.RdfFormat] = {
    ".ttl": ox.RdfFormat.TURTLE,
    ".nt": ox.RdfFormat.N_TRIPLES,
    ".nq": ox.RdfFormat.N_QUADS,
    ".trig": ox.RdfFormat.TRIG,
    ".jsonld": ox.RdfFormat.JSON_LD,
    ".rdf": ox.RdfFormat.RDF_XML,
    ".owl": ox.RdfFormat.RDF_XML,
    ".xml": ox.RdfFormat.RDF_XML,
}
CHUNK = 64 * 1024
MAX_PROLOG_CHARS = 1024 * 1024  # a prolog longer than this (comments, PIs) is refused, not scanned forever
_XML_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts with UTF-16 LE's
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (b"<\x00?\x00", "utf-16-le"),  # UTF-16 without a BOM
    (b"\x00<\x00?", "utf-16-be"),
)
_REFERENCE_KEYS = ("@context", "@import")


class UnsafeRdf(UsageError):
    """An RDF file refused before parsing (it would fetch, read local files or expand entities)."""


def rdf_format(path: Path) -> ox.RdfFormat:
    """The RDF format of ``path`` from its suffix (a UsageError for an unknown one)."""
    fmt = RDF_FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        known = " ".join(RDF_FORMATS)
        raise UsageError(f"{path}: unknown RDF file type {Path(path).suffix!r} (use {known})")
    return fmt


def load_rdf(
    path: Path, store: ox.Store | None = None, to_graph: ox.NamedNode | None = None
) -> ox.Store:
    """``path`` checked (:func:`check_rdf`) and bulk-loaded into ``store`` (a new in-memory store by
    default); triples go to the default graph, or to ``to_graph`` when given."""
    path = Path(path)
    fmt = check_rdf(path)
    target = store if store is not None else ox.Store()
    try:
        if to_graph is not None:
            target.bulk_load(path=str(path), format=fmt, to_graph=to_graph)
        else:
            target.bulk_load(path=str(path), format=fmt)
    except SyntaxError as exc:
        raise UsageError(f"{path}: not valid {fmt.name}: {exc}") from exc
    except OSError as exc:
        raise UsageError(f"{path}: cannot load: {exc}") from exc
    return target


def check_rdf(path: Path) -> ox.RdfFormat:
    """The format of ``path`` after the safety checks of its format (an :class:`UnsafeRdf` when refused)."""
    path = Path(path)
    fmt = rdf_format(path)
    try:
        with path.open("rb") as fh:
            if fmt == ox.RdfFormat.RDF_XML:
                check_rdfxml(fh, str(path))
            elif fmt == ox.RdfFormat.JSON_LD:
                check_jsonld(fh, str(path))
    except OSError as exc:
        raise UsageError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    return fmt


# --------------------------------------------------------------------------- RDF/XML


def check_rdfxml(fh: BinaryIO, name: str) -> None:
    """Refuse RDF/XML whose prolog declares a document type or entities (only the prolog is read)."""
    prolog = read_xml_prolog(fh)
    upper = prolog.upper()
    for marker, what in (("<!DOCTYPE", "a document type declaration"), ("<!ENTITY", "an entity declaration")):
        if marker in upper:
            raise UnsafeRdf(
                f"{name}: refused: RDF/XML with {what} ({marker} …); XML entities can expand without "
                "limit or read local files and URLs, and RDF/XML never needs them — remove the DOCTYPE block "
                "(or convert the file to Turtle) and try again"
            )


def read_xml_prolog(fh: BinaryIO) -> str:
    """The text before the root element: XML declaration, comments, processing instructions, DOCTYPE.

    Decoded by its byte-order mark (UTF-8 when none; any ASCII-compatible encoding reads the same
    markup).  A document type declaration ends the scan at once, so a huge internal subset is not read.
    """
    head = fh.read(4)
    encoding = next((enc for bom, enc in _XML_BOMS if head.startswith(bom)), "utf-8")
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(head)
    while True:
        end = _prolog_end(text)
        if end is not None:
            return text[:end]
        if "<!DOCTYPE" in text.upper() or "<!ENTITY" in text.upper() or len(text) > MAX_PROLOG_CHARS:
            return text
        chunk = fh.read(CHUNK)
        if not chunk:
            return text + decoder.decode(b"", final=True)
        text += decoder.decode(chunk)


def _prolog_end(text: str) -> int | None:
    """Offset of the root element's ``<`` in ``text``; None when the prolog may go on past ``text``."""
    i = 0
    n = len(text)
    while True:
        i = text.find("<", i)
        if i < 0 or i + 1 >= n:
            return None
        nxt = text[i + 1]
        if nxt == "?":
            close = text.find("?>", i + 2)
        elif text.startswith("<!--", i):
            close = text.find("-->", i + 4)
        elif nxt == "!":
            return None  # a declaration (<!DOCTYPE …): the caller refuses it
        else:
            return i
        if close < 0:
            return None
        i = close + 2


# --------------------------------------------------------------------------- JSON-LD


def check_jsonld(fh: BinaryIO, name: str) -> None:
    """Refuse JSON-LD with a remote, ``file:`` or relative ``@context`` / ``@import`` (streamed)."""
    try:
        for where, reference in context_references(fh):
            raise UnsafeRdf(
                f"{name}: refused: JSON-LD {where} is the reference {reference!r}; resolving it would "
                "fetch a URL or read a file, and cartkg never does — inline the context object instead (as "
                "`cartkg export -f jsonld` writes it)"
            )
    except ijson.JSONError as exc:
        raise UsageError(f"{name}: not valid JSON-LD (invalid JSON): {exc}") from exc


def context_references(fh: BinaryIO) -> Iterator[tuple[str, str]]:
    """``(json path, reference)`` for each string value of an ``@context`` / ``@import`` key (or of a list
    under one) anywhere in the document."""
    for prefix, event, value in ijson.parse(fh):
        if event != "string":
            continue
        parts = prefix.split(".")
        if parts and parts[-1] == "item":
            parts = parts[:-1]
        if parts and parts[-1] in _REFERENCE_KEYS:
            yield (prefix or "(document)"), str(value)
