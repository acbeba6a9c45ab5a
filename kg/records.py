"""Typed records: the contract between pipeline stages.

Readers (``kg.ingest``) yield :class:`TrialRecord`; every text is kept exactly
as read (Markdown escapes, mojibake and all).  Normalised copies are made by
``kg.text`` and never stored here, so evidence offsets always point into the
original text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Literal

Role = Literal["primary", "secondary", "other"]
ROLES: tuple[Role, ...] = ("primary", "secondary", "other")


@dataclass(frozen=True)
class Source:
    """Where a record came from: file path, detected format and 0-based index in the file."""

    path: str
    format: str
    index: int = 0


@dataclass(frozen=True)
class Intervention:
    type: str | None
    name: str
    description: str | None = None


@dataclass(frozen=True)
class Outcome:
    role: Role
    measure: str
    description: str | None
    time_frame: str | None


@dataclass(frozen=True)
class Enrollment:
    count: int | None
    type: str | None = None  # ESTIMATED | ACTUAL | None


@dataclass(frozen=True)
class DesignInfo:
    allocation: str | None = None
    intervention_model: str | None = None
    masking: str | None = None
    primary_purpose: str | None = None


@dataclass(frozen=True)
class TrialRecord:
    trial_id: str
    source: Source
    brief_title: str | None = None
    official_title: str | None = None
    brief_summary: str | None = None
    detailed_description: str | None = None
    conditions: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    interventions: tuple[Intervention, ...] = ()
    outcomes: tuple[Outcome, ...] = ()
    phases: tuple[str, ...] = ()
    study_type: str | None = None
    enrollment: Enrollment | None = None
    design: DesignInfo | None = None
    sponsor: str | None = None
    status: str | None = None
    start_date: str | None = None
    completion_date: str | None = None
    last_update: str | None = None

    @property
    def nct_id(self) -> str | None:
        return self.trial_id if is_nct_id(self.trial_id) else None

    def text_fields(self) -> Iterator[tuple[str, str]]:
        """Yield ``(field_path, original_text)`` for every free-text field.

        The field paths are the names evidence uses (``brief_title``,
        ``conditions[0]``, ``interventions[1].name``, ``outcomes[3].time_frame``)
        and :meth:`field_text` resolves them back.
        """
        for name in ("brief_title", "official_title", "brief_summary", "detailed_description"):
            value = getattr(self, name)
            if value:
                yield name, value
        for i, cond in enumerate(self.conditions):
            yield f"conditions[{i}]", cond
        for i, kw in enumerate(self.keywords):
            yield f"keywords[{i}]", kw
        for i, iv in enumerate(self.interventions):
            yield f"interventions[{i}].name", iv.name
            if iv.description:
                yield f"interventions[{i}].description", iv.description
        for i, oc in enumerate(self.outcomes):
            yield f"outcomes[{i}].measure", oc.measure
            if oc.description:
                yield f"outcomes[{i}].description", oc.description
            if oc.time_frame:
                yield f"outcomes[{i}].time_frame", oc.time_frame

    def field_text(self, path: str) -> str | None:
        """Return the original text of a field path produced by :meth:`text_fields`."""
        return dict(self.text_fields()).get(path)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (outcome keys match the gold contract)."""
        d = asdict(self)
        d["source"] = asdict(self.source)
        return d


def is_nct_id(value: str | None) -> bool:
    return bool(value) and len(value) == 11 and value.startswith("NCT") and value[3:].isdigit()  # type: ignore[union-attr]


@dataclass(frozen=True)
class ReadFailure:
    """A record that could not be read: enough to name the file, record and field."""

    path: str
    record: str  # record index or id, as the user would find it
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: record {self.record}"
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"


ReadItem = TrialRecord | ReadFailure
"""What readers yield: a record, or a failure that stands in for it in the stream."""


# --------------------------------------------------------------------------- extraction results
# What ``kg.extract`` produces from a TrialRecord and ``kg.build`` maps to RDF.  ``to_json`` gives
# the per-trial object of the gold contract (shared/gold/README.md), plus ``products`` and ``evidence``.


@dataclass(frozen=True)
class Evidence:
    """Why an extracted value was extracted: the span of the ORIGINAL field text and the rule that fired."""

    slot: str  # the extracted attribute: "antigens", "products[0].vector", "outcomes[2].endpoint", …
    value: str  # the normalized value the span supports ("CD19", "4-1BB", "P28D", …)
    field: str  # record field path from TrialRecord.text_fields() ("brief_title", "outcomes[2].measure")
    start: int  # offsets into the original field text, so that text == original[start:end]
    end: int
    text: str
    rule: str  # id of the pattern / rule that fired


@dataclass(frozen=True)
class Product:
    """One CAR product the record distinguishes."""

    name: str | None = None
    antigens: tuple[str, ...] = ()
    costimulatory_domains: tuple[str, ...] = ()
    signaling_domains: tuple[str, ...] = ()
    vector: str | None = None  # lentiviral | retroviral | transposon | mRNA | non-viral knock-in
    binder_origin: str | None = None  # murine | humanized | fully human
    generation: str | None = None  # "1st" | "2nd" | "3rd" | "4th" — only when the record says so
    cell_source: str | None = None  # autologous | allogeneic
    cell_type: str | None = None  # T | NK | NKT | γδ T | …


@dataclass(frozen=True)
class Design:
    randomized: bool | None = None
    single_arm: bool | None = None
    open_label: bool | None = None
    multi_center: bool | None = None
    dose_escalation: bool | None = None


@dataclass(frozen=True)
class DoseFraction:
    day: int
    percent: float


@dataclass(frozen=True)
class Dose:
    levels: int | None = None
    range_per_kg: tuple[float, float] | None = None
    fractions: tuple[DoseFraction, ...] = ()


@dataclass(frozen=True)
class TimeFrame:
    """A parsed outcome time frame (ISO 8601 durations in the text's own unit)."""

    max_duration: str | None = None  # "P28D", "P60M", "P2Y", "PT24H"
    window_start: str | None = None  # "P120D", or "-P8D" before the anchor
    # ISO offsets and event labels (baseline, pre-infusion, …), in time order
    timepoints: tuple[str, ...] = ()
    anchor: str | None = None  # infusion | first dose | CR | HSCT | enrolment | randomization | …
    unparsed: str | None = None  # why max_duration is empty when the text has a time frame


@dataclass(frozen=True)
class OutcomeExtraction:
    role: Role
    measure: str  # display text (escapes undone); the record keeps the original
    description: str | None
    time_frame: str | None
    endpoint: str = "OTHER"
    analyte: str | None = None
    criteria: tuple[str, ...] = ()
    timeframe: TimeFrame = TimeFrame()


@dataclass(frozen=True)
class TrialExtraction:
    trial_id: str
    source: Source
    antigens: tuple[str, ...] = ()
    targeting_strategy: str | None = None
    costimulatory_domains: tuple[str, ...] = ()
    signaling_domains: tuple[str, ...] = ()
    vector: str | None = None
    cell_source: str | None = None
    cell_type: str | None = None
    combined_with: tuple[str, ...] = ()
    diseases: tuple[str, ...] = ()
    relapsed_refractory: bool | None = None
    phase: str | None = None
    enrollment: int | None = None
    design: Design = Design()
    dose: Dose = Dose()
    products: tuple[Product, ...] = ()
    outcomes: tuple[OutcomeExtraction, ...] = ()
    evidence: tuple[Evidence, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The per-trial object of the gold contract, plus ``products``, ``source`` and ``evidence``."""
        return {
            "trial_id": self.trial_id,
            "antigens": list(self.antigens),
            "targeting_strategy": self.targeting_strategy,
            "costimulatory_domains": list(self.costimulatory_domains),
            "signaling_domains": list(self.signaling_domains),
            "vector": self.vector,
            "cell_source": self.cell_source,
            "cell_type": self.cell_type,
            "combined_with": list(self.combined_with),
            "diseases": list(self.diseases),
            "relapsed_refractory": self.relapsed_refractory,
            "phase": self.phase,
            "enrollment": self.enrollment,
            "design": asdict(self.design),
            "dose": {
                "levels": self.dose.levels,
                "range_per_kg": list(self.dose.range_per_kg) if self.dose.range_per_kg else None,
                "fractions": [asdict(f) for f in self.dose.fractions],
            },
            "products": [_product_json(p) for p in self.products],
            "outcomes": [_outcome_json(o) for o in self.outcomes],
            "source": asdict(self.source),
            "evidence": [asdict(e) for e in self.evidence],
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TrialExtraction:
        """Inverse of :meth:`to_json` (also reads gold-contract objects, which lack the extra keys)."""
        dose = d.get("dose") or {}
        rng = dose.get("range_per_kg")
        return cls(
            trial_id=d["trial_id"],
            source=Source(**d["source"]) if d.get("source") else Source(path="", format="json"),
            antigens=tuple(d.get("antigens") or ()),
            targeting_strategy=d.get("targeting_strategy"),
            costimulatory_domains=tuple(d.get("costimulatory_domains") or ()),
            signaling_domains=tuple(d.get("signaling_domains") or ()),
            vector=d.get("vector"),
            cell_source=d.get("cell_source"),
            cell_type=d.get("cell_type"),
            combined_with=tuple(d.get("combined_with") or ()),
            diseases=tuple(d.get("diseases") or ()),
            relapsed_refractory=d.get("relapsed_refractory"),
            phase=d.get("phase"),
            enrollment=d.get("enrollment"),
            design=Design(**(d.get("design") or {})),
            dose=Dose(
                levels=dose.get("levels"),
                range_per_kg=(float(rng[0]), float(rng[1])) if rng else None,
                fractions=tuple(DoseFraction(**f) for f in dose.get("fractions") or ()),
            ),
            products=tuple(_product_from_json(p) for p in d.get("products") or ()),
            outcomes=tuple(_outcome_from_json(o) for o in d.get("outcomes") or ()),
            evidence=tuple(Evidence(**e) for e in d.get("evidence") or ()),
        )


def _product_json(p: Product) -> dict[str, Any]:
    d = asdict(p)
    for k in ("antigens", "costimulatory_domains", "signaling_domains"):
        d[k] = list(d[k])
    return d


def _product_from_json(d: dict[str, Any]) -> Product:
    d = dict(d)
    for k in ("antigens", "costimulatory_domains", "signaling_domains"):
        d[k] = tuple(d.get(k) or ())
    return Product(**d)


def _outcome_json(o: OutcomeExtraction) -> dict[str, Any]:
    tf = o.timeframe
    return {
        "role": o.role,
        "measure": o.measure,
        "description": o.description,
        "time_frame": o.time_frame,
        "endpoint": o.endpoint,
        "analyte": o.analyte,
        "criteria": list(o.criteria),
        "max_duration": tf.max_duration,
        "window_start": tf.window_start,
        "timepoints": list(tf.timepoints),
        "anchor": tf.anchor,
        "unparsed": tf.unparsed,
    }


def _outcome_from_json(d: dict[str, Any]) -> OutcomeExtraction:
    return OutcomeExtraction(
        role=d["role"],
        measure=d["measure"],
        description=d.get("description"),
        time_frame=d.get("time_frame"),
        endpoint=d.get("endpoint") or "OTHER",
        analyte=d.get("analyte"),
        criteria=tuple(d.get("criteria") or ()),
        timeframe=TimeFrame(
            max_duration=d.get("max_duration"),
            window_start=d.get("window_start"),
            timepoints=tuple(d.get("timepoints") or ()),
            anchor=d.get("anchor"),
            unparsed=d.get("unparsed"),
        ),
    )
