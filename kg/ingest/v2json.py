"""ClinicalTrials.gov API v2 JSON: one study, a list of studies, a ``{"studies": […]}`` page, or JSON Lines.

Read from ``protocolSection``: identificationModule (nctId, briefTitle, officialTitle), statusModule
(overallStatus, start / completion / last-update-posted dates), sponsorCollaboratorsModule (leadSponsor),
descriptionModule, conditionsModule (conditions, keywords), designModule (studyType, phases, designInfo
with maskingInfo.masking, enrollmentInfo), armsInterventionsModule.interventions (type, name,
description) and outcomesModule (primary / secondary / other outcomes).  Unknown keys are ignored and
missing modules are tolerated; a study without ``protocolSection`` fails.

Types are checked: a value of the wrong JSON type (``"conditions": "Leukemia"``) fails naming its
path, because guessing how to split it would invent data.  The one coercion is an enrollment count
written as an integral float or a digit string (``30.0``, ``"30"``), which is unambiguous; ``null`` is
read as missing.

Streaming: JSON Lines are parsed line by line (a bad line fails alone); a single document is parsed by
``ijson`` events, and the studies of a list or a page are built and yielded one at a time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import ijson

from kg.errors import RecordError
from kg.ingest.detect import MAX_LINE_CHARS, Sniffed, iter_lines, text_stream
from kg.ingest.fields import (
    check_record,
    find_nct_id,
    record_label,
    to_count,
    to_enum,
    to_iso_date,
    to_phases,
)
from kg.records import DesignInfo, Enrollment, Intervention, Outcome, ReadFailure, Role, Source, TrialRecord

_OUTCOME_KEYS: tuple[tuple[str, Role], ...] = (
    ("primaryOutcomes", "primary"),
    ("secondaryOutcomes", "secondary"),
    ("otherOutcomes", "other"),
)
_NCT_KEY = re.compile(r'"nctId"\s*:\s*"(NCT\d{8})"')
_VALUE_EVENTS = frozenset({"null", "boolean", "integer", "double", "number", "string"})
_BINARY = re.compile("[\\udc80-\\udcff\\x00-\\x08\\x0e-\\x1f]")
_TOO_LARGE = "\x00cartkg: number too large: "
"""Starts the string :class:`_NumberGuard` writes in place of a number yajl cannot hold."""


# --------------------------------------------------------------------------- reading


def read_jsonl(stream: BinaryIO, path: str, sniffed: Sniffed) -> Iterator[TrialRecord | ReadFailure]:
    """JSON Lines: each line a study, a list or a page; a line that fails does not stop the file."""
    index = 0
    for line in iter_lines(text_stream(stream, sniffed.encoding, newline="\n"), MAX_LINE_CHARS):
        if not line.text.strip():
            continue
        if line.too_long:
            yield ReadFailure(
                path,
                record_label(index, _nct_in(line.text)),
                error_field(line.text),
                f"line {line.number} is {line.length:,} characters long, "
                f"over the limit of {MAX_LINE_CHARS:,}",
            )
            index += 1
            continue
        try:
            value = json.loads(line.text, parse_int=_parse_int)
        except ValueError as exc:
            binary = len(_BINARY.findall(line.text))
            problem = f"binary content ({binary} undecodable or control characters)" if binary else exc
            yield ReadFailure(
                path,
                record_label(index, _nct_in(line.text)),
                error_field(line.text),
                f"line {line.number}: invalid JSON ({problem})",
            )
            index += 1
            continue
        for item in iter_study_values(value):
            yield to_item(item, path, "jsonl", index)
            index += 1


def read_json(stream: BinaryIO, path: str, sniffed: Sniffed) -> Iterator[TrialRecord | ReadFailure]:
    """One JSON document (or several one after another), streamed by ijson events."""
    source: Any = stream if sniffed.encoding.startswith("utf-8") else _Utf8Reader(stream, sniffed.encoding)
    if sniffed.encoding == "utf-8-sig":
        stream.read(3)
    index = 0
    builder = _StudyStream()
    try:
        for prefix, event, value in ijson.parse(_NumberGuard(source), multiple_values=True, use_float=True):
            for item in builder.feed(prefix, event, value):
                for study in iter_study_values(item):
                    yield to_item(study, path, "json", index)
                    index += 1
    except ijson.JSONError as exc:
        yield ReadFailure(
            path,
            record_label(index, builder.nct_id),
            builder.field(),
            f"invalid or truncated JSON ({_ijson_message(exc)}); the rest of the file is not read",
        )


def iter_study_values(value: Any) -> Iterator[Any]:
    """The study objects in a JSON value: itself, a list's items, or a page's ``studies``."""
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and "studies" in item and "protocolSection" not in item:
                yield from iter_study_values(item)
            else:
                yield item
    elif isinstance(value, dict) and "studies" in value and "protocolSection" not in value:
        studies = value["studies"]
        if isinstance(studies, list):
            yield from studies
        else:
            yield _BadPage(f"'studies' should be a list of studies, got {_json_type(studies)}")
    else:
        yield value


def to_item(value: Any, path: str, fmt: str, index: int) -> TrialRecord | ReadFailure:
    """A TrialRecord, or the failure that names the record and field."""
    try:
        if isinstance(value, _BadPage):
            raise RecordError(value.message, field="studies")
        return parse_study(value, Source(path=path, format=fmt, index=index))
    except RecordError as exc:
        nct = _study_nct(value)
        return ReadFailure(path, exc.record or record_label(index, nct), exc.field, exc.message)


class _BadPage:
    def __init__(self, message: str) -> None:
        self.message = message


class _StudyStream:
    """Turns ijson events into top-level values, yielding list items and page studies one by one."""

    def __init__(self) -> None:
        self._item: ijson.ObjectBuilder | None = None
        self._top: ijson.ObjectBuilder | None = None
        self._prefix = ""
        self._key: str | None = None
        self._top_kind = ""
        self.nct_id: str | None = None

    def feed(self, prefix: str, event: str, value: Any) -> Iterator[Any]:
        self._prefix, self._key = prefix, (value if event == "map_key" else None)
        streamed = self._streamed(prefix)
        if streamed is not None:
            if prefix.endswith(".nctId") and event == "string":
                self.nct_id = value
            if self._item is None:
                self._item = ijson.ObjectBuilder()
                self.nct_id = None
            self._item.event(event, value)
            if prefix == streamed and (event in ("end_map", "end_array") or event in _VALUE_EVENTS):
                done, self._item = self._item.value, None
                self.nct_id = None
                yield done
            return
        if prefix.endswith(".nctId") and event == "string":
            self.nct_id = value
        if self._top is None:
            self._top = ijson.ObjectBuilder()
            self._top_kind = event
        self._top.event(event, value)
        if prefix == "" and (event in ("end_map", "end_array") or event in _VALUE_EVENTS):
            top, self._top = self._top.value, None
            self.nct_id = None
            if isinstance(top, dict) and "studies" in top and isinstance(top["studies"], list):
                return  # a page: its studies were yielded as they came
            if isinstance(top, list):
                return  # a list: its items were yielded as they came
            yield top

    def _streamed(self, prefix: str) -> str | None:
        """The streamed array ``prefix`` lies in: ``item`` under a top list, ``studies.item`` under a map."""
        if self._top is None:
            return None
        wanted = "item" if self._top_kind == "start_array" else "studies.item"
        return wanted if prefix == wanted or prefix.startswith(wanted + ".") else None

    def field(self) -> str | None:
        """Where parsing stopped, as a path inside the study (``protocolSection.descriptionModule``)."""
        path = self._prefix
        if self._key is not None:
            path = f"{path}.{self._key}" if path else self._key
        return _relative_path(path)


class _NumberGuard:
    """A UTF-8 JSON byte stream in which every number yajl cannot hold (an integer beyond 64 bits, a float
    beyond a double) is written as a marked string, so that only its record fails ("a number too large to
    read") and the rest of the file is read.  Strings are tracked across chunks; chunks are cut after a
    structural byte so that no number or escape is split.  Chunks without a long digit run or a 3-digit
    exponent pass through after one quote count."""

    _CANDIDATE = re.compile(rb"\d{19}|[eE][+-]?\d{3}")
    _TOKEN = re.compile(rb'\\.|"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?', re.S)
    _ESCAPE = re.compile(rb"\\.", re.S)
    _CUT = b" \t\r\n,:[]{}"
    _MAX_CARRY = 1 << 20

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._carry = b""
        self._in_string = False

    def read(self, size: int = -1) -> bytes:
        if size == 0:  # ijson asks read(0) to tell bytes from text
            return b""
        while True:
            chunk = self._stream.read(size if size and size > 0 else 1 << 16)
            data = self._carry + chunk
            if not chunk:
                self._carry = b""
                return self._guard(data)
            cut = max(data.rfind(b) for b in self._CUT) + 1
            if cut == 0 and len(data) < self._MAX_CARRY:
                self._carry = data
                continue
            cut = cut or len(data)
            self._carry = data[cut:]
            return self._guard(data[:cut])

    def _guard(self, data: bytes) -> bytes:
        if not self._CANDIDATE.search(data):
            self._in_string ^= bool(self._ESCAPE.sub(b"", data).count(b'"') & 1)
            return data
        parts, last = [], 0
        for m in self._TOKEN.finditer(data):
            token = m.group()
            if token == b'"':
                self._in_string = not self._in_string
            elif not self._in_string and token[:1] != b"\\" and _too_large(token):
                marker = json.dumps(_too_large_marker(token.decode("ascii"))).encode()
                parts += [data[last : m.start()], marker]
                last = m.end()
        parts.append(data[last:])
        return b"".join(parts)


def _parse_int(digits: str) -> int | str:
    """An integer, or the marked string for one yajl cannot hold (JSON Lines read the same as JSON)."""
    return _too_large_marker(digits) if _too_large(digits.encode("ascii", "replace")) else int(digits)


def _too_large_marker(token: str) -> str:
    shown = token if len(token) <= 24 else f"{sum(ch.isdigit() for ch in token):,} digits"
    return f"{_TOO_LARGE}{shown}"


def _too_large(token: bytes) -> bool:
    """Whether a JSON number overflows yajl: an integer outside 64 bits or a float beyond a double."""
    if b"." in token or b"e" in token or b"E" in token:
        return float(token) in (float("inf"), float("-inf"))
    digits = token.lstrip(b"-")
    return len(digits) > 19 or (len(digits) == 19 and digits > b"9223372036854775807")


class _Utf8Reader:
    """Re-encode a UTF-16/32 byte stream to UTF-8 for ijson."""

    def __init__(self, stream: BinaryIO, encoding: str) -> None:
        self._text = text_stream(stream, encoding, newline="")

    def read(self, size: int = -1) -> bytes:
        if size == 0:
            return b""
        return self._text.read(size if size > 0 else -1).encode("utf-8", "surrogateescape")


# --------------------------------------------------------------------------- one study


def parse_study(study: Any, source: Source) -> TrialRecord:
    """Map one API v2 study object to a TrialRecord; raises RecordError naming the field path."""
    if not isinstance(study, dict):
        raise RecordError(f"expected a study object, got {_json_type(study)}", field=None)
    if study.get("protocolSection") is None:
        keys = ", ".join(sorted(study)[:8]) or "none"
        raise RecordError(
            f"no 'protocolSection' (keys: {keys}); is this an API v2 study?", field="protocolSection"
        )
    ps = _obj(study, "protocolSection", "")
    ident = _obj(ps, "identificationModule", "protocolSection")
    ip = "protocolSection.identificationModule"
    nct = _str(ident, "nctId", ip)
    if not nct:
        raise RecordError("the study has no nctId", field=f"{ip}.nctId")
    status = _obj(ps, "statusModule", "protocolSection")
    desc = _obj(ps, "descriptionModule", "protocolSection")
    conds = _obj(ps, "conditionsModule", "protocolSection")
    design = _obj(ps, "designModule", "protocolSection")
    sponsor = _obj(ps, "sponsorCollaboratorsModule", "protocolSection")
    sp, dp = "protocolSection.statusModule", "protocolSection.designModule"
    record = TrialRecord(
        trial_id=nct,
        source=source,
        brief_title=_str(ident, "briefTitle", ip),
        official_title=_str(ident, "officialTitle", ip),
        brief_summary=_str(desc, "briefSummary", "protocolSection.descriptionModule"),
        detailed_description=_str(desc, "detailedDescription", "protocolSection.descriptionModule"),
        conditions=_str_list(conds, "conditions", "protocolSection.conditionsModule"),
        keywords=_str_list(conds, "keywords", "protocolSection.conditionsModule"),
        interventions=parse_interventions(ps),
        outcomes=parse_outcomes(ps),
        phases=to_phases(_str_list(design, "phases", dp)),
        study_type=to_enum("study_type", _str(design, "studyType", dp)),
        enrollment=parse_enrollment(design),
        design=parse_design_info(design),
        sponsor=_str(
            _obj(sponsor, "leadSponsor", "protocolSection.sponsorCollaboratorsModule"),
            "name",
            "protocolSection.sponsorCollaboratorsModule.leadSponsor",
        ),
        status=to_enum("status", _str(status, "overallStatus", sp)),
        start_date=_date(status, "startDateStruct", sp),
        completion_date=_date(status, "completionDateStruct", sp),
        last_update=_date(status, "lastUpdatePostDateStruct", sp),
    )
    try:
        return check_record(record)
    except RecordError as exc:
        raise RecordError(exc.message, field=_evidence_to_json_path(exc.field)) from None


def parse_interventions(ps: dict[str, Any]) -> tuple[Intervention, ...]:
    base = "protocolSection.armsInterventionsModule"
    module = _obj(ps, "armsInterventionsModule", "protocolSection")
    out = []
    for i, item in enumerate(_list(module, "interventions", base)):
        path = f"{base}.interventions[{i}]"
        if not isinstance(item, dict):
            raise RecordError(f"expected an object, got {_json_type(item)}", field=path)
        name = _str(item, "name", path)
        if not name:
            raise RecordError("the intervention has no name", field=f"{path}.name")
        out.append(
            Intervention(
                type=to_enum("intervention_type", _str(item, "type", path)),
                name=name,
                description=_str(item, "description", path),
            )
        )
    return tuple(out)


def parse_outcomes(ps: dict[str, Any]) -> tuple[Outcome, ...]:
    base = "protocolSection.outcomesModule"
    module = _obj(ps, "outcomesModule", "protocolSection")
    out = []
    for key, role in _OUTCOME_KEYS:
        for i, item in enumerate(_list(module, key, base)):
            path = f"{base}.{key}[{i}]"
            if not isinstance(item, dict):
                raise RecordError(f"expected an object, got {_json_type(item)}", field=path)
            measure = _str(item, "measure", path)
            if not measure:
                raise RecordError("the outcome has no measure", field=f"{path}.measure")
            out.append(
                Outcome(
                    role=role,
                    measure=measure,
                    description=_str(item, "description", path),
                    time_frame=_str(item, "timeFrame", path),
                )
            )
    return tuple(out)


def parse_enrollment(design: dict[str, Any]) -> Enrollment | None:
    path = "protocolSection.designModule.enrollmentInfo"
    info = _obj(design, "enrollmentInfo", "protocolSection.designModule")
    if not info:
        return None
    raw_count = info.get("count")
    if isinstance(raw_count, str) and not _is_text(raw_count):
        raise RecordError(f"expected a whole number, got {_json_type(raw_count)}", field=f"{path}.count")
    count = to_count(raw_count, f"{path}.count")
    kind = to_enum("enrollment_type", _str(info, "type", path))
    return Enrollment(count=count, type=kind) if count is not None or kind else None


def parse_design_info(design: dict[str, Any]) -> DesignInfo | None:
    path = "protocolSection.designModule.designInfo"
    info = _obj(design, "designInfo", "protocolSection.designModule")
    masking = _obj(info, "maskingInfo", path)
    result = DesignInfo(
        allocation=to_enum("allocation", _str(info, "allocation", path)),
        intervention_model=to_enum("intervention_model", _str(info, "interventionModel", path)),
        masking=to_enum("masking", _str(masking, "masking", f"{path}.maskingInfo")),
        primary_purpose=to_enum("primary_purpose", _str(info, "primaryPurpose", path)),
    )
    return result if result != DesignInfo() else None


# --------------------------------------------------------------------------- typed access


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def _obj(d: dict[str, Any], key: str, base: str) -> dict[str, Any]:
    value = d.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(f"expected an object, got {_json_type(value)}", field=_join(base, key))
    return value


def _list(d: dict[str, Any], key: str, base: str) -> list[Any]:
    value = d.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(f"expected a list, got {_json_type(value)}", field=_join(base, key))
    return value


def _str(d: dict[str, Any], key: str, base: str) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not _is_text(value):
        raise RecordError(f"expected a string, got {_json_type(value)}", field=_join(base, key))
    return value or None


def _str_list(d: dict[str, Any], key: str, base: str) -> tuple[str, ...]:
    out = []
    for i, value in enumerate(_list(d, key, base)):
        if not _is_text(value):
            raise RecordError(f"expected a string, got {_json_type(value)}", field=f"{_join(base, key)}[{i}]")
        if value:
            out.append(value)
    return tuple(out)


def _date(status: dict[str, Any], key: str, base: str) -> str | None:
    return to_iso_date(_str(_obj(status, key, base), "date", _join(base, key)))


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and not value.startswith(_TOO_LARGE)


def _json_type(value: Any) -> str:
    if isinstance(value, str) and value.startswith(_TOO_LARGE):
        return f"a number too large to read ({value[len(_TOO_LARGE):]}; at most 64 bits)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({json.dumps(value)})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return "an object"


# --------------------------------------------------------------------------- naming failures

_EVIDENCE_TO_JSON = {
    "brief_title": "protocolSection.identificationModule.briefTitle",
    "official_title": "protocolSection.identificationModule.officialTitle",
    "brief_summary": "protocolSection.descriptionModule.briefSummary",
    "detailed_description": "protocolSection.descriptionModule.detailedDescription",
}


def _evidence_to_json_path(field: str | None) -> str | None:
    """Name a record field (``brief_summary``) by its JSON path, which the user can find in the file."""
    if field is None:
        return None
    if field in _EVIDENCE_TO_JSON:
        return _EVIDENCE_TO_JSON[field]
    m = re.fullmatch(r"(conditions|keywords)\[(\d+)\]", field)
    if m:
        return f"protocolSection.conditionsModule.{m.group(1)}[{m.group(2)}]"
    m = re.fullmatch(r"interventions\[(\d+)\]\.(\w+)", field)
    if m:
        return f"protocolSection.armsInterventionsModule.interventions[{m.group(1)}].{m.group(2)}"
    return field


def _study_nct(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    ps = value.get("protocolSection")
    ident = ps.get("identificationModule") if isinstance(ps, dict) else None
    nct = ident.get("nctId") if isinstance(ident, dict) else None
    if isinstance(nct, str) and nct:
        return nct
    return find_nct_id(json.dumps(value, ensure_ascii=False)[:100_000])


def _nct_in(text: str) -> str | None:
    m = _NCT_KEY.search(text)
    return m.group(1) if m else find_nct_id(text)


def error_field(text: str) -> str | None:
    """The path inside the study where the JSON text breaks off or goes wrong (found by ijson events)."""
    builder = _StudyStream()
    try:
        for prefix, event, value in ijson.parse(
            text.encode("utf-8", "surrogateescape"), multiple_values=True, use_float=True
        ):  # use_float: yajl reports a too-large integer as an error (as Python ints it crashes ijson 3.6)
            for _ in builder.feed(prefix, event, value):
                pass
    except ijson.JSONError:
        return builder.field()
    return None


def _relative_path(prefix: str) -> str | None:
    """``studies.item.protocolSection.x`` → ``protocolSection.x``; ijson's ``.item`` → ``[]``."""
    for head in ("studies.item.", "item."):
        if prefix.startswith(head):
            prefix = prefix[len(head) :]
            break
    else:
        if prefix in ("studies.item", "item"):
            prefix = ""
    prefix = re.sub(r"\.item(?=\.|$)", "[]", prefix)
    return prefix or None


def _ijson_message(exc: Exception) -> str:
    msg = exc.args[0] if exc.args else str(exc)
    if isinstance(msg, bytes):
        msg = msg.decode("utf-8", "replace")
    return str(msg).strip().splitlines()[0] if str(msg).strip() else type(exc).__name__
