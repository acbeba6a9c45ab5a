"""Legacy ClinicalTrials.gov XML (``<clinical_study>``, the pre-2024 bulk download), parsed safely.

Parsing uses :mod:`defusedxml` with DTDs forbidden: a file with a ``<!DOCTYPE>`` (the door to entity
expansion and external fetches) fails, naming the file; entities and external references are refused
too.  Studies are read with ``iterparse`` and cleared once built, so a file holding many
``<clinical_study>`` elements (under any wrapper element) streams.

Textblocks (``brief_summary``, ``detailed_description``) are indented and hard-wrapped at about 100
columns, with ``&#xD;`` line ends.  They are decoded as follows: line ends are normalised to ``\\n``;
each line is stripped of its indentation; blank lines separate paragraphs (joined with ``"\\n\\n"``);
inside a paragraph a line that starts with a list marker (``-``, ``*``, ``•``, ``o``, ``1.``, ``1)``,
``a.``) starts a new line, and any other line continues the previous one after a single space (the
wrapping broke lines at spaces only).  Nothing else is changed.  Other elements' text is kept as read.
Labels are mapped to the API v2 enum spelling through ``enums.json`` (``Phase 1/Phase 2`` → PHASE1,
PHASE2; ``Non-Randomized`` → NON_RANDOMIZED; ``Single Group Assignment`` → SINGLE_GROUP; ``None (Open
Label)`` → NONE; enrollment type ``Anticipated`` → ESTIMATED), and dates to ISO (``November 1, 2018`` →
2018-11-01).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import BinaryIO
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden

from kg.errors import RecordError
from kg.ingest.detect import Sniffed
from kg.ingest.fields import check_record, record_label, to_count, to_enum, to_iso_date, to_phases
from kg.records import DesignInfo, Enrollment, Intervention, Outcome, ReadFailure, Role, Source, TrialRecord

FORMAT = "xml"
STUDY_TAG = "clinical_study"
_OUTCOME_TAGS: tuple[tuple[str, Role], ...] = (
    ("primary_outcome", "primary"),
    ("secondary_outcome", "secondary"),
    ("other_outcome", "other"),
)
_LIST_ITEM = re.compile(r"(?:[-*•·o]|\d{1,3}[.)]|[a-zA-Z][.)])\s")


def read_xml(stream: BinaryIO, path: str, sniffed: Sniffed) -> Iterator[TrialRecord | ReadFailure]:
    """Yield a record (or a failure) for every ``<clinical_study>`` in the file."""
    index = 0
    stack: list[str] = []
    nct: str | None = None
    root: str | None = None
    try:
        for event, elem in SafeET.iterparse(stream, events=("start", "end"), forbid_dtd=True):
            if event == "start":
                stack.append(elem.tag)
                root = root or elem.tag
                continue
            stack.pop()
            if elem.tag == "nct_id" and stack[-2:] == [STUDY_TAG, "id_info"]:
                nct = (elem.text or "").strip() or None
            if elem.tag != STUDY_TAG:
                continue
            yield to_item(elem, path, index)
            index += 1
            nct = None
            elem.clear()
    except DTDForbidden as exc:
        yield ReadFailure(
            path,
            record_label(index, nct),
            "<!DOCTYPE>",
            f"the XML declares a DOCTYPE ({exc.name!r}); "
            "DTDs are refused (they allow entity expansion and external fetches)",
        )
        return
    except (EntitiesForbidden, ExternalReferenceForbidden, DefusedXmlException) as exc:
        yield ReadFailure(
            path, record_label(index, nct), "/".join(stack) or None, f"unsafe XML refused: {exc}"
        )
        return
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        yield ReadFailure(
            path,
            record_label(index, nct),
            "/".join(stack) or None,
            f"malformed or truncated XML at line {line}, column {column} ({_parse_reason(exc)})",
        )
        return
    if index == 0:
        yield ReadFailure(path, "#0", STUDY_TAG, f"no <{STUDY_TAG}> element (the root element is <{root}>)")


def to_item(elem: Element, path: str, index: int) -> TrialRecord | ReadFailure:
    try:
        return parse_study(elem, Source(path=path, format=FORMAT, index=index))
    except RecordError as exc:
        nct = (elem.findtext("id_info/nct_id") or "").strip() or None
        return ReadFailure(path, exc.record or record_label(index, nct), exc.field, exc.message)


def parse_study(study: Element, source: Source) -> TrialRecord:
    """Map one ``<clinical_study>`` element to a TrialRecord; raises RecordError naming the element."""
    nct = (study.findtext("id_info/nct_id") or "").strip()
    if not nct:
        raise RecordError("the study has no NCT number", field="id_info/nct_id")
    enrollment_elem = study.find("enrollment")
    enrollment = None
    if enrollment_elem is not None:
        count = to_count(enrollment_elem.text, "enrollment")
        kind = to_enum("enrollment_type", enrollment_elem.get("type"))
        enrollment = Enrollment(count=count, type=kind) if count is not None or kind else None
    record = TrialRecord(
        trial_id=nct,
        source=source,
        brief_title=_text(study, "brief_title"),
        official_title=_text(study, "official_title"),
        brief_summary=_textblock(study, "brief_summary"),
        detailed_description=_textblock(study, "detailed_description"),
        conditions=_texts(study, "condition"),
        keywords=_texts(study, "keyword"),
        interventions=parse_interventions(study),
        outcomes=parse_outcomes(study),
        phases=to_phases(_texts(study, "phase")),
        study_type=to_enum("study_type", _text(study, "study_type")),
        enrollment=enrollment,
        design=parse_design_info(study),
        sponsor=_text(study, "sponsors/lead_sponsor/agency"),
        status=to_enum("status", _text(study, "overall_status")),
        start_date=to_iso_date(_text(study, "start_date")),
        completion_date=to_iso_date(_text(study, "completion_date")),
        last_update=to_iso_date(_text(study, "last_update_posted")),
    )
    try:
        return check_record(record)
    except RecordError as exc:
        raise RecordError(exc.message, field=_element_path(exc.field)) from None


def parse_interventions(study: Element) -> tuple[Intervention, ...]:
    out = []
    for i, elem in enumerate(study.findall("intervention")):
        name = _text(elem, "intervention_name")
        if not name:
            raise RecordError(
                "the intervention has no name", field=f"intervention[{i + 1}]/intervention_name"
            )
        out.append(
            Intervention(
                type=to_enum("intervention_type", _text(elem, "intervention_type")),
                name=name,
                description=_text(elem, "description"),
            )
        )
    return tuple(out)


def parse_outcomes(study: Element) -> tuple[Outcome, ...]:
    out = []
    for tag, role in _OUTCOME_TAGS:
        for i, elem in enumerate(study.findall(tag)):
            measure = _text(elem, "measure")
            if not measure:
                raise RecordError("the outcome has no measure", field=f"{tag}[{i + 1}]/measure")
            out.append(
                Outcome(
                    role=role,
                    measure=measure,
                    description=_text(elem, "description"),
                    time_frame=_text(elem, "time_frame"),
                )
            )
    return tuple(out)


def parse_design_info(study: Element) -> DesignInfo | None:
    info = study.find("study_design_info")
    if info is None:
        return None
    result = DesignInfo(
        allocation=to_enum("allocation", _text(info, "allocation")),
        intervention_model=to_enum("intervention_model", _text(info, "intervention_model")),
        masking=to_enum("masking", _text(info, "masking")),
        primary_purpose=to_enum("primary_purpose", _text(info, "primary_purpose")),
    )
    return result if result != DesignInfo() else None


def decode_textblock(raw: str) -> str:
    """Undo the legacy XML's indentation and hard wrapping (see the module docstring for the rules)."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        text = line.strip()
        if not text:
            if current:
                paragraphs.append(current)
                current = []
            continue
        if current and not _LIST_ITEM.match(text):
            current[-1] = f"{current[-1]} {text}"
        else:
            current.append(text)
    if current:
        paragraphs.append(current)
    return "\n\n".join("\n".join(lines) for lines in paragraphs)


# --------------------------------------------------------------------------- helpers


def _text(elem: Element, path: str) -> str | None:
    found = elem.find(path)
    if found is None or found.text is None:
        return None
    return found.text if found.text.strip() else None


def _texts(elem: Element, path: str) -> tuple[str, ...]:
    return tuple(e.text for e in elem.findall(path) if e.text and e.text.strip())


def _textblock(study: Element, tag: str) -> str | None:
    block = study.find(f"{tag}/textblock")
    raw = block.text if block is not None else study.findtext(tag)
    if not raw or not raw.strip():
        return None
    return decode_textblock(raw)


_RECORD_TO_XML = {
    "brief_title": "brief_title",
    "official_title": "official_title",
    "brief_summary": "brief_summary/textblock",
    "detailed_description": "detailed_description/textblock",
}


def _element_path(field: str | None) -> str | None:
    """Name a record field by the element the user can find in the file."""
    if field is None:
        return None
    if field in _RECORD_TO_XML:
        return _RECORD_TO_XML[field]
    m = re.fullmatch(r"(conditions|keywords)\[(\d+)\]", field)
    if m:
        tag = "condition" if m.group(1) == "conditions" else "keyword"
        return f"{tag}[{int(m.group(2)) + 1}]"
    m = re.fullmatch(r"interventions\[(\d+)\]\.(name|description)", field)
    if m:
        child = "intervention_name" if m.group(2) == "name" else "description"
        return f"intervention[{int(m.group(1)) + 1}]/{child}"
    return field


def _parse_reason(exc: ParseError) -> str:
    return str(exc).split(":", 1)[0]
