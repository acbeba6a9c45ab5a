"""Extraction: ``TrialRecord`` → ``TrialExtraction`` (antigens, strategy, construct, disease, design, dose).

Every free-text field of a record is one ``Doc`` of the spaCy pipeline of :mod:`kg.extract.pipeline`
(normalized text in, evidence mapped back to the original text).  Per-slot decisions are plain
functions: :mod:`~kg.extract.strategy` (antigens, targeting strategy), :mod:`~kg.extract.products`
(construct and products), :mod:`~kg.extract.design` (design, phase, enrolment, dose levels, diseases,
combinations), :mod:`~kg.extract.dose` (dose range and fractions).  Outcomes are annotated by
``kg.extract.outcomes.annotate_outcome``.

>>> from kg.extract import extract_records
>>> for extraction in extract_records(records, n_process=2):   # doctest: +SKIP
...     print(extraction.to_json())
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

from spacy.tokens import Doc

from kg.errors import RecordError
from kg.extract.mentions import FieldText, Mention, read_doc, record_fields
from kg.records import Evidence, Outcome, OutcomeExtraction, TrialExtraction, TrialRecord
from kg.text import NormalizedText, undo_escapes

__all__ = ["extract_record", "extract_records", "extract_one", "ExtractionFailure"]

DEFAULT_BATCH_SIZE = 128  # texts (record fields) per nlp.pipe batch


class ExtractionFailure(RecordError):
    """A record the extractor could not process (names the record and what went wrong)."""


def extract_record(record: TrialRecord) -> TrialExtraction:
    """Extract one record (builds the pipeline on first use)."""
    return next(iter(extract_records([record])))


def extract_records(
    records: Iterable[TrialRecord], n_process: int = 1, batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[TrialExtraction]:
    """Extract records in order, streaming: every field text goes through one ``nlp.pipe`` (batches of
    ``batch_size`` texts) on ``n_process`` processes.  A record that fails raises :class:`ExtractionFailure`
    (use :func:`extract_each` to keep going past failures)."""
    for item in extract_each(records, n_process=n_process, batch_size=batch_size):
        if isinstance(item, ExtractionFailure):
            raise item
        yield item


def extract_each(
    records: Iterable[TrialRecord], n_process: int = 1, batch_size: int = DEFAULT_BATCH_SIZE
) -> Iterator[TrialExtraction | ExtractionFailure]:
    """Like :func:`extract_records` but yields an :class:`ExtractionFailure` in place of a failed record.

    All field texts of all records stream through ONE ``nlp.pipe`` call (so ``n_process`` workers are
    started once); docs come back in input order and are regrouped per record.
    """
    if n_process > 1:
        yield from extract_parallel(records, n_process, batch_size)
        return
    from kg.extract.pipeline import get_pipeline

    nlp = get_pipeline()
    pending: deque[tuple[TrialRecord, list[tuple[str, NormalizedText]]] | ExtractionFailure] = deque()

    def texts() -> Iterator[str]:
        for record in records:
            try:
                fields = record_fields(record)
            except Exception as exc:  # a malformed text field must not stop the stream
                pending.append(
                    ExtractionFailure(f"record {record.trial_id}: cannot normalize its text: {exc}")
                )
                continue
            pending.append((record, fields))
            for _, norm in fields:
                yield norm.text

    docs = iter(nlp.pipe(texts(), n_process=n_process, batch_size=batch_size))
    lookahead: deque[Doc] = deque()
    exhausted = False
    while True:
        if not pending:
            if exhausted:
                return
            try:
                lookahead.append(next(docs))  # pulls texts(), which queues the next record(s)
            except StopIteration:
                exhausted = True
            continue
        item = pending.popleft()
        if isinstance(item, ExtractionFailure):
            yield item
            continue
        record, fields = item
        field_docs = [lookahead.popleft() if lookahead else next(docs) for _ in fields]
        try:
            yield extract_one(record, fields, field_docs)
        except Exception as exc:
            yield ExtractionFailure(
                f"record {record.trial_id} ({record.source.path}): extraction failed: {exc!r}"
            )


PARALLEL_CHUNK = 16  # records per task handed to a worker process


def extract_parallel(
    records: Iterable[TrialRecord], n_process: int, batch_size: int
) -> Iterator[TrialExtraction | ExtractionFailure]:
    """Records in chunks over ``n_process`` worker processes, results in input order.

    Whole records go to the workers (not spaCy docs): each worker normalizes, runs the pipeline,
    assembles and annotates outcomes, and sends back small frozen dataclasses.  (spaCy's own
    ``nlp.pipe(n_process=…)`` ships every doc back and forth and was several times slower here.)
    """
    import multiprocessing as mp

    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    with mp.get_context(method).Pool(n_process, initializer=_warm_up) as pool:
        for results in pool.imap(_extract_chunk, _chunks(records, PARALLEL_CHUNK), chunksize=1):
            yield from results


def _chunks(records: Iterable[TrialRecord], size: int) -> Iterator[list[TrialRecord]]:
    chunk: list[TrialRecord] = []
    for record in records:
        chunk.append(record)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _warm_up() -> None:
    from kg.extract.pipeline import get_pipeline

    get_pipeline()


def _extract_chunk(records: list[TrialRecord]) -> list[TrialExtraction | ExtractionFailure]:
    return list(extract_each(records, n_process=1))


def extract_one(
    record: TrialRecord, fields: list[tuple[str, NormalizedText]], docs: list[Doc]
) -> TrialExtraction:
    """Assemble the extraction of one record from its processed field docs."""
    from kg.extract import design as dz
    from kg.extract import dose as dd
    from kg.extract import products as pz
    from kg.extract import strategy as st
    from kg.extract.vocab import load_vocabulary

    vocab = load_vocabulary()
    texts: list[FieldText] = []
    mentions: list[Mention] = []
    for (path, norm), doc in zip(fields, docs, strict=True):
        ft, ms = read_doc(doc, path, norm, vocab)
        texts.append(ft)
        mentions.extend(ms)
    evidence: list[Evidence] = []

    antigens, antigen_support = st.select_antigens(mentions, vocab)
    strategy, strategy_cues = st.select_strategy(antigens, mentions, vocab)
    construct = pz.read_construct(mentions)
    named = pz.named_products(mentions, vocab)
    products = pz.build_products(antigens, strategy, construct, named)
    # trial level = union over products (named products may add antigens the text does not spell out)
    antigens = union(antigens, *(p.antigens for p in products))
    costim = union(*(p.costimulatory_domains for p in products))
    signaling = union(*(p.signaling_domains for p in products))
    vector = agreed([p.vector for p in products]) or construct.vector.value
    cell_source = agreed([p.cell_source for p in products]) or construct.cell_source.value
    cell_type = agreed([p.cell_type for p in products]) or construct.cell_type.value
    if strategy is None and antigens:
        strategy, _ = st.select_strategy(antigens, mentions, vocab)

    for concept, m in antigen_support:
        if m.label == "ANTIGEN":
            evidence.append(m.evidence("antigens", concept))
    for name, known, ms in named:
        for m in ms:
            evidence.append(m.evidence("products", name))
            for a in known.get("antigens", ()):
                evidence.append(m.evidence("antigens", a))
    if strategy:
        evidence += [m.evidence("targeting_strategy", strategy) for m in strategy_cues]
        if not strategy_cues:
            evidence += [m.evidence("targeting_strategy", strategy) for c, m in antigen_support[:1]]
    evidence += construct_evidence(construct, named)
    products_ev = product_evidence(products, named)

    phase, ev = dz.select_phase(record, mentions)
    evidence += ev
    enrollment, ev = dz.select_enrollment(record, mentions)
    evidence += ev
    design, ev = dz.select_design(record, mentions)
    evidence += ev
    levels, ev = dz.select_dose_levels(mentions)
    evidence += ev
    rng, ev = dd.select_range(texts)
    evidence += ev
    fractions, ev = dd.select_fractions(texts)
    evidence += ev
    diseases, ev = dz.select_diseases(mentions, vocab, antigens)
    evidence += ev
    rr, ev = dz.select_relapsed(mentions)
    evidence += ev
    combined, ev = dz.select_combined(mentions)
    evidence += ev

    outcomes, outcome_ev = annotate_outcomes(record.outcomes)
    evidence += outcome_ev + products_ev

    from kg.records import Dose

    return TrialExtraction(
        trial_id=record.trial_id,
        source=record.source,
        antigens=tuple(antigens),
        targeting_strategy=strategy,
        costimulatory_domains=tuple(costim),
        signaling_domains=tuple(signaling),
        vector=vector,
        cell_source=cell_source,
        cell_type=cell_type,
        combined_with=tuple(combined),
        diseases=tuple(diseases),
        relapsed_refractory=rr,
        phase=phase,
        enrollment=enrollment,
        design=design,
        dose=Dose(levels=levels, range_per_kg=rng, fractions=fractions),
        products=tuple(products),
        outcomes=tuple(outcomes),
        evidence=tuple(sorted(set(evidence), key=evidence_key)),
    )


def evidence_key(e: Evidence) -> tuple:
    return (e.slot, e.value, e.field, e.start, e.end, e.rule)


def union(*groups: Iterable[str]) -> list[str]:
    out: list[str] = []
    for g in groups:
        for x in g:
            if x not in out:
                out.append(x)
    return out


def agreed(values: list[str | None]) -> str | None:
    """The one value all products that state it agree on (None if they disagree or none states it)."""
    distinct = sorted({v for v in values if v})
    return distinct[0] if len(distinct) == 1 else None


def construct_evidence(construct: object, named: list) -> list[Evidence]:
    from kg.extract.products import Construct

    assert isinstance(construct, Construct)
    ev: list[Evidence] = []
    for slot, choices in (
        ("costimulatory_domains", construct.costim),
        ("signaling_domains", construct.signaling),
    ):
        for c in choices:
            ev += [m.evidence(slot, c.value or "") for m in c.support]
    for slot, choice in (
        ("vector", construct.vector),
        ("cell_source", construct.cell_source),
        ("cell_type", construct.cell_type),
        ("binder_origin", construct.binder),
        ("generation", construct.generation),
    ):
        ev += [m.evidence(slot, choice.value or "") for m in choice.support]
    for _name, design, ms in named:
        for slot in ("costimulatory_domains", "signaling_domains"):
            for v in design.get(slot, ()):
                ev += [m.evidence(slot, v) for m in ms]
        for slot in ("vector", "cell_source", "cell_type", "binder_origin", "generation"):
            if design.get(slot):
                ev += [m.evidence(slot, design[slot]) for m in ms]
    return ev


def product_evidence(products: list, named: list) -> list[Evidence]:
    """Name each product's evidence slot (``products[i].name``) after its named-product mentions."""
    ev: list[Evidence] = []
    by_name = {name: ms for name, _, ms in named}
    for i, p in enumerate(products):
        for m in by_name.get(p.name, []):
            ev.append(m.evidence(f"products[{i}].name", p.name))
    return ev


def annotate_outcomes(outcomes: Iterable[Outcome]) -> tuple[list[OutcomeExtraction], list[Evidence]]:
    """Annotate each outcome with ``kg.extract.outcomes.annotate_outcome`` when it is available;
    otherwise keep the three text parts (escapes undone) and leave the annotation empty."""
    try:
        from kg.extract.outcomes import annotate_outcome
    except ImportError:
        annotate_outcome = None  # type: ignore[assignment]
    out: list[OutcomeExtraction] = []
    ev: list[Evidence] = []
    for i, oc in enumerate(outcomes):
        if annotate_outcome is not None:
            extraction, evidence = annotate_outcome(oc, i)
            out.append(extraction)
            ev.extend(evidence)
        else:
            out.append(
                OutcomeExtraction(
                    role=oc.role,
                    measure=undo_escapes(oc.measure),
                    description=undo_escapes(oc.description) if oc.description is not None else None,
                    time_frame=undo_escapes(oc.time_frame) if oc.time_frame is not None else None,
                )
            )
    return out, ev
