"""Extractions → RDF: one pure function per trial, plus the shared vocabulary graph and the build driver.

``build_trial_graph(extraction, record)`` maps one :class:`TrialExtraction` (and, when available, the
:class:`TrialRecord` it came from) to an rdflib graph: the trial, its record and text fields, products,
outcomes with parsed time frames, dose regimen, and one Web Annotation per evidence span.  Every IRI
comes from :func:`kg.iri.mint`; vocabulary values from :func:`kg.vocab.concept`.  ``build_vocabulary_graph``
gives the shared graph (ontology + minted vocabulary values).  ``build`` writes the store and files.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from rdflib import OWL, RDF, RDFS, SKOS, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, PROV, TIME

from kg import __version__
from kg.iri import AGENT, ID, VOCABULARY_GRAPH, digest, graph_iri, mint, trial_iri
from kg.namespace import CARTKG
from kg.records import (
    Evidence,
    OutcomeExtraction,
    Product,
    TrialExtraction,
    TrialRecord,
    is_nct_id,
)
from kg.text import undo_escapes
from kg.vocab import concept, load_ontology, lookup, parse_vocab_iri

OA = Namespace("http://www.w3.org/ns/oa#")
OBO = Namespace("http://purl.obolibrary.org/obo/")
PREFIXES: dict[str, str] = {
    "cartkg": str(CARTKG._NS),
    "cartkgid": ID,
    "ctgov": "https://clinicaltrials.gov/study/",
    "dcterms": str(DCTERMS),
    "oa": str(OA),
    "obo": str(OBO),
    "owl": str(OWL),
    "prov": str(PROV),
    "rdf": str(RDF),
    "rdfs": str(RDFS),
    "skos": str(SKOS),
    "time": str(TIME),
    "xsd": str(XSD),
}
QUOTE_CONTEXT = 32  # characters of prefix / suffix kept around an evidence quote

ROLE_CLASS = {
    "primary": CARTKG.PrimaryOutcome,
    "secondary": CARTKG.SecondaryOutcome,
    "other": CARTKG.OtherOutcome,
}
DESIGN_FEATURES = ("randomized", "single_arm", "open_label", "multi_center", "dose_escalation")
# strategies whose products each aim at one antigen: trial-level antigens become one product per antigen
PER_ANTIGEN_STRATEGIES = frozenset({"single", "cocktail", "sequential"})
# evidence slot (index stripped) -> vocabulary of the value it supports
SLOT_VOCABULARY: dict[str, URIRef] = {
    "antigens": CARTKG.Antigen,
    "costimulatory_domains": CARTKG.CostimulatoryDomain,
    "signaling_domains": CARTKG.SignallingDomain,
    "vector": CARTKG.Vector,
    "cell_source": CARTKG.CellSource,
    "cell_type": CARTKG.CellType,
    "targeting_strategy": CARTKG.TargetingStrategy,
    "diseases": CARTKG.Disease,
    "combined_with": CARTKG.CombinedTherapy,
    "phase": CARTKG.TrialPhase,
    "endpoint": CARTKG.EndpointClass,
    "analyte": CARTKG.Analyte,
    "criteria": CARTKG.Criteria,
    "anchor": CARTKG.AnchorEvent,
    "timepoints": CARTKG.VisitEvent,
}
_SLOT = re.compile(r"^(?:(products|outcomes)\[(\d+)\]\.)?([A-Za-z_]+)")
_ISO_PART = re.compile(r"(\d+(?:\.\d+)?)([YMWDHS])")
_ISO = re.compile(
    r"^-?P(?=\d|T\d)(?:\d+(?:\.\d+)?Y)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?W)?(?:\d+(?:\.\d+)?D)?"
    r"(?:T(?=\d)(?:\d+(?:\.\d+)?H)?(?:\d+(?:\.\d+)?M)?(?:\d+(?:\.\d+)?S)?)?$"
)
_DAYS = {
    "Y": Decimal("365.25"),
    "M": Decimal("30.4375"),
    "W": Decimal(7),
    "D": Decimal(1),
    "H": Decimal(1) / 24,
    "TM": Decimal(1) / 1440,
    "S": Decimal(1) / 86400,
}
_UNIT = {
    "Y": TIME.unitYear,
    "M": TIME.unitMonth,
    "W": TIME.unitWeek,
    "D": TIME.unitDay,
    "H": TIME.unitHour,
    "TM": TIME.unitMinute,
    "S": TIME.unitSecond,
}


def new_graph() -> Graph:
    """An empty graph with the project's prefixes bound once (rdflib's defaults replaced)."""
    g = Graph(bind_namespaces="none")
    for prefix, ns in PREFIXES.items():
        g.bind(prefix, ns)
    return g


def text_literal(value: str) -> Literal:
    return Literal(value)


def integer(value: int) -> Literal:
    return Literal(int(value), datatype=XSD.integer)


def decimal(value: float) -> Literal:
    """An xsd:decimal in plain notation (5000000.0, never 5e+06, so Turtle writers keep it as written)."""
    return Literal(_decimal_text(Decimal(repr(float(value)))), datatype=XSD.decimal)


# --------------------------------------------------------------------------- durations


@dataclass(frozen=True)
class ParsedDuration:
    iso: str
    number: Decimal  # value in `unit` (the text's own unit when the duration has one component)
    unit: URIRef
    days: Decimal


def parse_duration(iso: str) -> ParsedDuration | None:
    """Parse an ISO 8601 duration (``P28D``, ``P24M``, ``-P8D``, ``PT24H``); None when it is not one."""
    if not _ISO.match(iso):
        return None
    sign = Decimal(-1) if iso.startswith("-") else Decimal(1)
    date_part, _, time_part = iso.lstrip("-")[1:].partition("T")
    parts = [(u, Decimal(n)) for n, u in _ISO_PART.findall(date_part)]
    parts += [("TM" if u == "M" else u, Decimal(n)) for n, u in _ISO_PART.findall(time_part)]
    days = sign * sum((_DAYS[u] * n for u, n in parts), Decimal(0))
    if len(parts) == 1:
        unit, number = parts[0]
        return ParsedDuration(iso, sign * number, _UNIT[unit], _round(days))
    return ParsedDuration(iso, _round(days), TIME.unitDay, _round(days))


def _round(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.000001")).normalize() if value else Decimal(0)


def add_duration(g: Graph, node: URIRef, iso: str) -> None:
    """Describe ``node`` as an OWL-Time duration plus our xsd:duration literal (lexical form kept)."""
    g.add((node, RDF.type, TIME.Duration))
    g.add((node, CARTKG.isoDuration, Literal(iso, datatype=XSD.duration, normalize=False)))
    parsed = parse_duration(iso)
    if parsed is not None:
        g.add((node, TIME.numericDuration, Literal(_decimal_text(parsed.number), datatype=XSD.decimal)))
        g.add((node, TIME.unitType, parsed.unit))
        g.add((node, CARTKG.durationInDays, Literal(_decimal_text(parsed.days), datatype=XSD.decimal)))


def _decimal_text(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text if "." in text else text + ".0"


# --------------------------------------------------------------------------- the trial graph


def build_trial_graph(extraction: TrialExtraction, record: TrialRecord | None = None) -> Graph:
    """One trial's statements (pure: the same inputs give the same graph)."""
    return trial_triples(extraction, record).graph()


def _fill_trial(g: Graph, extraction: TrialExtraction, record: TrialRecord | None) -> None:
    if record is not None and record.trial_id != extraction.trial_id:
        raise ValueError(f"record {record.trial_id!r} does not match extraction {extraction.trial_id!r}")
    tid = extraction.trial_id
    trial = trial_iri(tid)
    g.add((trial, RDF.type, CARTKG.ClinicalTrial))
    g.add((trial, CARTKG.trialId, text_literal(tid)))
    if is_nct_id(tid):
        g.add((trial, CARTKG.nctId, text_literal(tid)))
    add_provenance(g, extraction, record)
    if record is not None:
        add_record_facts(g, trial, record)
    add_extracted_facts(g, trial, extraction, record)
    products = derive_products(extraction)
    for i, (product, inferred) in enumerate(products):
        add_product(g, trial, tid, i, product, inferred)
    if extraction.dose.levels is not None or extraction.dose.range_per_kg or extraction.dose.fractions:
        add_dose(g, trial, extraction)
    for i, outcome in enumerate(extraction.outcomes):
        add_outcome(g, trial, tid, i, outcome)
    fields = dict(record.text_fields()) if record is not None else {}
    for ev in extraction.evidence:
        add_evidence(g, trial, tid, ev, fields, has_products=bool(extraction.products))


def add_provenance(g: Graph, extraction: TrialExtraction, record: TrialRecord | None) -> None:
    """The source record, the extraction activity and the trial graph as a PROV entity."""
    tid = extraction.trial_id
    rec, activity, graph = mint("record", tid), mint("activity", tid), graph_iri(tid)
    source = record.source if record is not None else extraction.source
    g.add((trial_iri(tid), CARTKG.hasSourceRecord, rec))
    g.add((rec, RDF.type, CARTKG.SourceRecord))
    if source.path:
        g.add((rec, CARTKG.sourcePath, text_literal(source.path)))
    g.add((rec, CARTKG.sourceFormat, text_literal(source.format)))
    g.add((rec, CARTKG.sourceIndex, integer(source.index)))
    g.add((activity, RDF.type, CARTKG.ExtractionActivity))
    g.add((activity, PROV.used, rec))
    g.add((activity, PROV.wasAssociatedWith, AGENT))
    g.add((graph, RDF.type, CARTKG.TrialGraph))
    g.add((graph, CARTKG.describesTrial, trial_iri(tid)))
    g.add((graph, PROV.wasDerivedFrom, rec))
    g.add((graph, PROV.wasGeneratedBy, activity))
    if record is not None and record.last_update:
        g.add((rec, CARTKG.lastUpdate, text_literal(record.last_update)))
        stamp = _datetime(record.last_update)
        if stamp is not None:  # deterministic: the record's own date, never the build time
            g.add((graph, PROV.generatedAtTime, stamp))
    if record is not None:
        for path, text in record.text_fields():
            node = mint("field", tid, path)
            g.add((rec, CARTKG.hasField, node))
            g.add((node, RDF.type, CARTKG.RecordField))
            g.add((node, CARTKG.fieldPath, text_literal(path)))
            g.add((node, CARTKG.fieldText, text_literal(text)))


def _datetime(date: str) -> Literal | None:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", date):
        return Literal(date + "T00:00:00Z", datatype=XSD.dateTime)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})?", date):
        return Literal(date, datatype=XSD.dateTime)
    return None


def add_record_facts(g: Graph, trial: URIRef, record: TrialRecord) -> None:
    """Registry facts that need no extraction: titles, conditions, interventions, status, sponsor…"""
    tid = record.trial_id
    title = record.brief_title or record.official_title
    if title:
        g.add((trial, CARTKG.title, text_literal(undo_escapes(title))))
    if record.official_title:
        g.add((trial, CARTKG.officialTitle, text_literal(undo_escapes(record.official_title))))
    for cond in record.conditions:
        g.add((trial, CARTKG.condition, text_literal(undo_escapes(cond))))
    for kw in record.keywords:
        g.add((trial, CARTKG.keyword, text_literal(undo_escapes(kw))))
    for i, iv in enumerate(record.interventions):
        node = mint("intervention", tid, i)
        g.add((trial, CARTKG.hasIntervention, node))
        g.add((node, RDF.type, CARTKG.Intervention))
        g.add((node, CARTKG.interventionName, text_literal(undo_escapes(iv.name))))
        if iv.type:
            g.add((node, CARTKG.interventionType, text_literal(iv.type)))
        if iv.description:
            g.add((node, CARTKG.interventionDescription, text_literal(undo_escapes(iv.description))))
    if record.study_type:
        g.add((trial, CARTKG.studyType, text_literal(record.study_type)))
        if record.study_type.upper() == "INTERVENTIONAL":
            g.add((trial, RDF.type, CARTKG.InterventionalTrial))
    for prop, value in (
        (CARTKG.overallStatus, record.status),
        (CARTKG.sponsorName, record.sponsor),
        (CARTKG.startDate, record.start_date),
        (CARTKG.completionDate, record.completion_date),
    ):
        if value:
            g.add((trial, prop, text_literal(value)))


def add_extracted_facts(g: Graph, trial: URIRef, ex: TrialExtraction, record: TrialRecord | None) -> None:
    """Trial-level extracted values: strategy, diseases, phase, enrollment, design, combinations."""
    if ex.targeting_strategy:
        g.add((trial, CARTKG.hasTargetingStrategy, concept(CARTKG.TargetingStrategy, ex.targeting_strategy)))
    for disease in ex.diseases:
        g.add((trial, CARTKG.studiesDisease, concept(CARTKG.Disease, disease)))
    for therapy in ex.combined_with:
        g.add((trial, CARTKG.combinedWith, concept(CARTKG.CombinedTherapy, therapy)))
    phase = ex.phase or record_phase(record)
    if phase:
        g.add((trial, CARTKG.hasPhase, concept(CARTKG.TrialPhase, phase)))
    enrollment = ex.enrollment
    if enrollment is None and record is not None and record.enrollment is not None:
        enrollment = record.enrollment.count
    if enrollment is not None:
        g.add((trial, CARTKG.enrollment, integer(enrollment)))
    if ex.relapsed_refractory is not None:
        g.add((trial, CARTKG.relapsedRefractory, Literal(bool(ex.relapsed_refractory))))
    for name in DESIGN_FEATURES:
        value = getattr(ex.design, name)
        if value is not None:
            prop = CARTKG.hasDesignFeature if value else CARTKG.lacksDesignFeature
            g.add((trial, prop, concept(CARTKG.DesignFeature, name)))


def record_phase(record: TrialRecord | None) -> str | None:
    """The registry's phase list joined the way the contract writes it (``PHASE1/PHASE2``)."""
    if record is None:
        return None
    phases = [p for p in record.phases if p and p.upper() not in ("NA", "N/A")]
    return "/".join(phases) if phases else None


def derive_products(ex: TrialExtraction) -> list[tuple[Product, bool]]:
    """The extractor's products, or products inferred from trial-level values: ``[(product, inferred)]``.

    Single, cocktail and sequential strategies give one product per antigen (each aims at one
    antigen); bispecific, bicistronic, multi-target and unstated give one product with all antigens.
    """
    if ex.products:
        return [(p, False) for p in ex.products]
    shared = {
        "costimulatory_domains": ex.costimulatory_domains,
        "signaling_domains": ex.signaling_domains,
        "vector": ex.vector,
        "cell_source": ex.cell_source,
        "cell_type": ex.cell_type,
    }
    if not ex.antigens and not any(shared.values()):
        return []
    if ex.targeting_strategy in PER_ANTIGEN_STRATEGIES and len(ex.antigens) > 1:
        return [(Product(antigens=(a,), **shared), True) for a in ex.antigens]  # type: ignore[arg-type]
    return [(Product(antigens=ex.antigens, **shared), True)]  # type: ignore[arg-type]


def add_product(g: Graph, trial: URIRef, tid: str, i: int, p: Product, inferred: bool) -> None:
    product, construct = mint("product", tid, i), mint("construct", tid, i)
    g.add((trial, CARTKG.hasProduct, product))
    g.add((product, RDF.type, CARTKG.CarTProduct))
    g.add((product, CARTKG.productIndex, integer(i)))
    g.add((product, CARTKG.productInferred, Literal(inferred)))
    if p.name:
        g.add((product, CARTKG.productName, text_literal(p.name)))
    for prop, vocabulary, value in (
        (CARTKG.usesVector, CARTKG.Vector, p.vector),
        (CARTKG.hasCellSource, CARTKG.CellSource, p.cell_source),
        (CARTKG.hasCellType, CARTKG.CellType, p.cell_type),
    ):
        if value:
            g.add((product, prop, concept(vocabulary, value)))
    g.add((product, CARTKG.hasConstruct, construct))
    g.add((construct, RDF.type, CARTKG.CarConstruct))
    for antigen in p.antigens:
        g.add((construct, CARTKG.targetsAntigen, concept(CARTKG.Antigen, antigen)))
    for domain in p.costimulatory_domains:
        g.add((construct, CARTKG.hasCostimulatoryDomain, concept(CARTKG.CostimulatoryDomain, domain)))
    for domain in p.signaling_domains:
        g.add((construct, CARTKG.hasSignallingDomain, concept(CARTKG.SignallingDomain, domain)))
    if p.binder_origin:
        g.add((construct, CARTKG.binderOrigin, text_literal(p.binder_origin)))
    if p.generation:
        g.add((construct, CARTKG.carGeneration, text_literal(p.generation)))


def add_dose(g: Graph, trial: URIRef, ex: TrialExtraction) -> None:
    tid, dose = ex.trial_id, ex.dose
    node = mint("dose", tid, "regimen")
    g.add((trial, CARTKG.hasDoseRegimen, node))
    g.add((node, RDF.type, CARTKG.DoseRegimen))
    if dose.levels is not None:
        g.add((node, CARTKG.doseLevels, integer(dose.levels)))
    if dose.range_per_kg:
        low, high = dose.range_per_kg
        g.add((node, CARTKG.minCellsPerKg, decimal(low)))
        g.add((node, CARTKG.maxCellsPerKg, decimal(high)))
    for j, fraction in enumerate(dose.fractions):
        frac = mint("fraction", tid, j)
        g.add((node, CARTKG.hasFraction, frac))
        g.add((frac, RDF.type, CARTKG.DoseFraction))
        g.add((frac, CARTKG.fractionDay, integer(fraction.day)))
        percent = Decimal(repr(float(fraction.percent)))
        g.add((frac, CARTKG.fractionPercent, Literal(_decimal_text(percent), datatype=XSD.decimal)))


def add_outcome(g: Graph, trial: URIRef, tid: str, i: int, o: OutcomeExtraction) -> None:
    node = mint("outcome", tid, i)
    g.add((trial, CARTKG.hasOutcome, node))
    g.add((node, RDF.type, ROLE_CLASS.get(o.role, CARTKG.Outcome)))
    g.add((node, CARTKG.outcomeIndex, integer(i)))
    g.add((node, CARTKG.hasRole, concept(CARTKG.OutcomeRole, o.role)))
    g.add((node, CARTKG.measure, text_literal(undo_escapes(o.measure))))
    if o.description:
        g.add((node, CARTKG.outcomeDescription, text_literal(undo_escapes(o.description))))
    g.add((node, CARTKG.hasEndpointClass, concept(CARTKG.EndpointClass, o.endpoint)))
    if o.analyte:
        g.add((node, CARTKG.measuresAnalyte, concept(CARTKG.Analyte, o.analyte)))
    for criteria in o.criteria:
        g.add((node, CARTKG.assessedWith, concept(CARTKG.Criteria, criteria)))
    tf = o.timeframe
    if not (o.time_frame or tf.max_duration or tf.window_start or tf.timepoints or tf.anchor or tf.unparsed):
        return
    frame = mint("timeframe", tid, i)
    g.add((node, CARTKG.hasTimeFrame, frame))
    g.add((frame, RDF.type, CARTKG.TimeFrame))
    if o.time_frame:
        g.add((frame, CARTKG.timeFrameText, text_literal(undo_escapes(o.time_frame))))
    if tf.max_duration:
        end = mint("duration", tid, i, "end")
        g.add((frame, CARTKG.windowEnd, end))
        add_duration(g, end, tf.max_duration)
    if tf.window_start:
        start = mint("duration", tid, i, "start")
        g.add((frame, CARTKG.windowStart, start))
        add_duration(g, start, tf.window_start)
    if tf.anchor:
        g.add((frame, CARTKG.anchoredAt, concept(CARTKG.AnchorEvent, tf.anchor)))
    if tf.unparsed:
        g.add((frame, CARTKG.unparsedReason, text_literal(tf.unparsed)))
    for j, label in enumerate(tf.timepoints):
        point = mint("timepoint", tid, i, j)
        g.add((frame, CARTKG.hasTimepoint, point))
        g.add((point, RDF.type, CARTKG.Timepoint))
        g.add((point, CARTKG.timepointIndex, integer(j)))
        if label.lstrip("-").startswith("P"):
            offset = mint("duration", tid, i, f"t{j}")
            g.add((point, CARTKG.timepointOffset, offset))
            add_duration(g, offset, label)
        else:
            g.add((point, CARTKG.timepointEvent, concept(CARTKG.VisitEvent, label)))


def add_evidence(
    g: Graph, trial: URIRef, tid: str, ev: Evidence, fields: dict[str, str], *, has_products: bool
) -> None:
    """One evidence span as a Web Annotation: target = record field + quote and position selectors."""
    key = digest(ev.slot, ev.value, ev.field, ev.start, ev.end, ev.rule)
    node, target = mint("evidence", tid, key), mint("target", tid, key)
    quote, position = mint("selector", tid, key, "quote"), mint("selector", tid, key, "position")
    source = mint("field", tid, ev.field)
    g.add((node, RDF.type, CARTKG.Evidence))
    g.add((node, RDF.type, OA.Annotation))
    g.add((node, CARTKG.slot, text_literal(ev.slot)))
    g.add((node, CARTKG.value, text_literal(ev.value)))
    g.add((node, CARTKG.rule, text_literal(ev.rule)))
    g.add((node, CARTKG.supports, evidence_subject(trial, tid, ev.slot, has_products)))
    body = evidence_body(ev)
    if body is not None:
        g.add((node, OA.hasBody, body))
    g.add((node, OA.hasTarget, target))
    g.add((node, PROV.wasDerivedFrom, source))
    g.add((node, PROV.wasGeneratedBy, mint("activity", tid)))
    g.add((target, RDF.type, OA.SpecificResource))
    g.add((target, OA.hasSource, source))
    g.add((target, OA.hasSelector, quote))
    g.add((target, OA.hasSelector, position))
    g.add((quote, RDF.type, OA.TextQuoteSelector))
    g.add((quote, OA.exact, text_literal(ev.text)))
    original = fields.get(ev.field)
    if original is not None and original[ev.start : ev.end] == ev.text:
        g.add((quote, OA.prefix, text_literal(original[max(0, ev.start - QUOTE_CONTEXT) : ev.start])))
        g.add((quote, OA.suffix, text_literal(original[ev.end : ev.end + QUOTE_CONTEXT])))
    g.add((position, RDF.type, OA.TextPositionSelector))
    g.add((position, OA.start, integer(ev.start)))
    g.add((position, OA.end, integer(ev.end)))
    if fields and ev.field not in fields:  # the record has no such field: keep the evidence, flag the field
        g.add((source, RDF.type, CARTKG.RecordField))
        g.add((source, CARTKG.fieldPath, text_literal(ev.field)))
    elif not fields:
        g.add((source, RDF.type, CARTKG.RecordField))
        g.add((source, CARTKG.fieldPath, text_literal(ev.field)))


def evidence_subject(trial: URIRef, tid: str, slot: str, has_products: bool) -> URIRef:
    """The node an evidence slot is about: ``products[i].…`` → product i, ``outcomes[i].…`` → outcome i."""
    m = _SLOT.match(slot)
    if m and m.group(1) == "outcomes":
        return mint("outcome", tid, int(m.group(2)))
    if m and m.group(1) == "products" and has_products:
        return mint("product", tid, int(m.group(2)))
    return trial


def evidence_body(ev: Evidence) -> URIRef | None:
    """The vocabulary IRI of the value an evidence span supports, when the slot has a vocabulary."""
    m = _SLOT.match(ev.slot)
    name = m.group(3) if m else ev.slot
    if name in DESIGN_FEATURES:
        return concept(CARTKG.DesignFeature, name)
    if name == "timepoints" and ev.value.lstrip("-").startswith("P"):
        return None
    vocabulary = SLOT_VOCABULARY.get(name)
    return concept(vocabulary, ev.value) if vocabulary is not None else None


# --------------------------------------------------------------------------- shared vocabulary


def minted_vocabulary(graphs: Iterable[Graph]) -> list[URIRef]:
    """Sorted minted vocabulary IRIs (values the ontology does not declare) used by ``graphs``."""
    prefix = ID + "vocab/"
    found: set[URIRef] = set()
    for g in graphs:
        for o in g.objects():
            if isinstance(o, URIRef) and str(o).startswith(prefix):
                found.add(o)
    return sorted(found)


def build_vocabulary_graph(minted: Iterable[URIRef] = ()) -> Graph:
    """The shared graph: the ontology, the software agent and a description of each minted value."""
    g = new_graph()
    for triple in load_ontology():
        g.add(triple)
    g.add((AGENT, RDF.type, PROV.SoftwareAgent))
    g.add((AGENT, RDFS.label, Literal(f"cartkg {__version__}")))
    for iri in sorted(set(minted)):
        describe_minted(g, iri)
    return g


def describe_minted(g: Graph, iri: URIRef) -> None:
    parsed = parse_vocab_iri(str(iri))
    if parsed is None:
        return
    vocabulary, value = parsed
    g.add((iri, RDF.type, vocabulary))
    g.add((iri, RDFS.label, Literal(value)))
    g.add((iri, SKOS.notation, Literal(value)))
    g.add((iri, RDFS.comment, Literal("Minted by cartkg: this value is not in the ontology's vocabulary.")))
    if vocabulary == CARTKG.Criteria:
        family_name, _, version = value.partition(" ")
        family = lookup(CARTKG.CriteriaFamily, family_name)
        if family is None:
            family = concept(CARTKG.CriteriaFamily, family_name)
            describe_minted(g, family)
        g.add((iri, CARTKG.criteriaFamily, family))
        if version:
            g.add((iri, CARTKG.criteriaVersion, Literal(version.lstrip("vV") or version)))


# --------------------------------------------------------------------------- batch build

WITHDRAWN_STATUSES = frozenset({"WITHDRAWN"})  # registry statuses whose trial leaves the store


class TripleSet:
    """The statements of one trial as a set (the ``add`` of an rdflib graph without its indexes).

    ``build_trial_graph`` fills one and turns it into a graph; a batch build writes its N-Triples directly
    (an rdflib graph per trial was most of a build's time).
    """

    __slots__ = ("triples",)

    def __init__(self) -> None:
        self.triples: set[tuple[Any, Any, Any]] = set()

    def add(self, triple: tuple[Any, Any, Any]) -> None:
        self.triples.add(triple)

    def graph(self) -> Graph:
        g = new_graph()
        for triple in self.triples:
            g.add(triple)
        return g


def nt_term(term: Any) -> str:
    """One term as N-Triples, exactly as rdflib's ``nt`` serializer writes it (so digests stay comparable)."""
    if isinstance(term, Literal):
        escaped = term.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"').replace("\r", "\\r")
        text = f'"{escaped}"'
        if term.language:
            return f"{text}@{term.language}"
        return f"{text}^^<{term.datatype}>" if term.datatype else text
    if isinstance(term, URIRef):
        return f"<{term}>"
    return term.n3()


def ntriples_lines(triples: Iterable[tuple[Any, Any, Any]]) -> list[str]:
    """Sorted, unique N-Triples lines (each ending in `` .``) of ``triples``."""
    return sorted({f"{nt_term(s)} {nt_term(p)} {nt_term(o)} ." for s, p, o in triples})


def lines_digest(lines: Sequence[str]) -> str:
    """Content digest of a graph given as sorted N-Triples lines (the store's ``graph_digest``)."""
    return hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TrialBuild:
    """One trial's statements as sorted N-Triples, with what the store and its report need about them."""

    trial_id: str
    nt: bytes  # sorted unique N-Triples lines, each ending in " .\n"
    source: str
    digest: str
    triples: int
    minted: tuple[str, ...]  # minted vocabulary IRIs the graph uses
    registry_version: str | None = None  # the record's last update date (ClinicalTrials.gov version)


@dataclass(frozen=True)
class TrialWithdrawn:
    """A record whose registry status says the trial is withdrawn: its graph is removed, not built."""

    trial_id: str
    source: str
    status: str
    registry_version: str | None = None


@dataclass
class BuildFailure:
    """A record that did not become a trial graph; ``stage`` is ``read``, ``extract`` or ``build``."""

    trial_id: str
    source: str
    message: str
    stage: str = "build"

    def __str__(self) -> str:
        return f"{self.source}: record {self.trial_id}: {self.message}"


BuildItem = TrialBuild | TrialWithdrawn | BuildFailure


def trial_triples(extraction: TrialExtraction, record: TrialRecord | None = None) -> TripleSet:
    """The statements of :func:`build_trial_graph` without an rdflib graph."""
    sink = TripleSet()
    _fill_trial(sink, extraction, record)  # type: ignore[arg-type]
    return sink


def build_trial(extraction: TrialExtraction, record: TrialRecord | None = None) -> TrialBuild:
    """One trial as a :class:`TrialBuild` (its N-Triples, digest, triple count and minted values)."""
    triples = trial_triples(extraction, record).triples
    lines = ntriples_lines(triples)
    prefix = ID + "vocab/"
    minted = sorted({str(o) for _, _, o in triples if isinstance(o, URIRef) and o.startswith(prefix)})
    source = (record.source if record is not None else extraction.source).path or "<extraction>"
    return TrialBuild(
        trial_id=extraction.trial_id,
        nt="".join(line + "\n" for line in lines).encode("utf-8"),
        source=source,
        digest=lines_digest(lines),
        triples=len(lines),
        minted=tuple(minted),
        registry_version=record.last_update if record is not None else None,
    )


def is_withdrawn(record: TrialRecord | None) -> bool:
    return record is not None and (record.status or "").upper() in WITHDRAWN_STATUSES


def build_item(extraction: TrialExtraction, record: TrialRecord | None) -> BuildItem:
    """Build one trial; a withdrawn record gives :class:`TrialWithdrawn`, an error a :class:`BuildFailure`."""
    source = (record.source if record is not None else extraction.source).path or "<extraction>"
    if is_withdrawn(record):
        return withdrawn_item(record)  # type: ignore[arg-type]
    try:
        return build_trial(extraction, record)
    except (ValueError, TypeError, KeyError) as exc:
        return BuildFailure(extraction.trial_id, source, f"{type(exc).__name__}: {exc}")


def withdrawn_item(record: TrialRecord) -> TrialWithdrawn:
    source = record.source.path or "<record>"
    return TrialWithdrawn(record.trial_id, source, record.status or "", record.last_update)


def build_graphs(pairs: Iterable[tuple[TrialExtraction, TrialRecord | None]]) -> Iterator[BuildItem]:
    """Build each trial; a trial that cannot be built becomes a failure, the batch goes on."""
    for extraction, record in pairs:
        yield build_item(extraction, record)


# ---- records → extraction → trial builds, over worker processes

PARALLEL_CHUNK = 16  # records per task handed to a worker
IN_FLIGHT_PER_JOB = 4  # chunks queued or unconsumed per worker: bounds memory, keeps the workers busy


def build_records(records: Iterable[TrialRecord], jobs: int = 1) -> Iterator[BuildItem]:
    """Extract and build each record, in input order; ``jobs`` > 1 runs whole chunks on a fork pool.

    Records are read lazily and at most ``jobs * IN_FLIGHT_PER_JOB`` chunks are in flight, so memory
    is bounded by the chunk size, not the corpus.  Withdrawn records are not extracted.
    """
    if jobs <= 1:
        for chunk in _chunks(records, PARALLEL_CHUNK):
            yield from _build_chunk(chunk)
        return
    import multiprocessing as mp
    import threading

    slots = threading.BoundedSemaphore(jobs * IN_FLIGHT_PER_JOB)

    def chunks() -> Iterator[list[TrialRecord]]:
        for chunk in _chunks(records, PARALLEL_CHUNK):
            slots.acquire()  # runs in the pool's task thread: waits until the consumer caught up
            yield chunk

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(jobs, initializer=_warm_up) as pool:
        for results in pool.imap(_build_chunk, chunks(), chunksize=1):
            slots.release()
            yield from results


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _warm_up() -> None:
    from kg.extract.pipeline import get_pipeline

    get_pipeline()


def _build_chunk(records: list[TrialRecord]) -> list[BuildItem]:
    """Extract and build one chunk of records (in a worker): small picklable results only."""
    from kg.extract import extract_each

    out: list[BuildItem | None] = [None] * len(records)
    todo = []
    for i, record in enumerate(records):
        if is_withdrawn(record):
            out[i] = withdrawn_item(record)
        else:
            todo.append(i)
    extracted = extract_each([records[i] for i in todo], n_process=1)
    for i, item in zip(todo, extracted, strict=True):
        record = records[i]
        if isinstance(item, Exception):
            out[i] = BuildFailure(record.trial_id, record.source.path or "<record>", str(item), "extract")
        else:
            out[i] = build_item(item, record)
    return [item for item in out if item is not None]


def build(
    pairs: Iterable[tuple[TrialExtraction, TrialRecord | None]] | None,
    out_dir: Path,
    *,
    fresh: bool = False,
    prune: bool = False,
    formats: Sequence[str] = (),
    items: Iterable[BuildItem] | None = None,
    read_failures: int = 0,
    records_read: int | None = None,
    studies_fetched: int | None = None,
    jobs: int = 1,
    progress: Any = None,
) -> dict[str, Any]:
    """Build trial graphs into the store under ``out_dir`` and write ``graph.ttl`` and the build report.

    ``pairs`` are built here; ``items`` are already built (e.g. by :func:`build_records`).  Without
    ``fresh`` the previous store is updated.  Returns the build report (also written as
    ``out_dir/build-report.json``).
    """
    from itertools import chain

    from kg.store import write_build

    streams: list[Iterable[BuildItem]] = []
    if pairs is not None:
        streams.append(build_graphs(pairs))
    if items is not None:
        streams.append(items)
    return write_build(
        chain.from_iterable(streams),
        Path(out_dir),
        fresh=fresh,
        prune=prune,
        formats=formats,
        read_failures=read_failures,
        records_read=records_read,
        studies_fetched=studies_fetched,
        jobs=jobs,
        progress=progress,
    )


__all__ = [
    "OA",
    "PREFIXES",
    "VOCABULARY_GRAPH",
    "BuildFailure",
    "BuildItem",
    "TrialBuild",
    "TrialWithdrawn",
    "add_duration",
    "build",
    "build_graphs",
    "build_item",
    "build_records",
    "build_trial",
    "build_trial_graph",
    "build_vocabulary_graph",
    "derive_products",
    "minted_vocabulary",
    "new_graph",
    "parse_duration",
]
