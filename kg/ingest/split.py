"""Split the flat text / CSV form of outcomes back into (measure, description, time frame).

PLACEHOLDER being replaced by the real boundary finder (issue 2): splits outcomes on "|"
and takes the first ", "-segment as measure and the last as time frame.
"""

from __future__ import annotations

from kg.records import Outcome, Role


def split_outcomes(text: str, role: Role) -> list[Outcome]:
    """Split a whole outcome column (outcomes joined by "|") into Outcomes of ``role``."""
    outcomes = []
    for chunk in text.split("|"):
        if not chunk.strip():
            continue
        parts = chunk.split(", ")
        if len(parts) == 1:
            outcomes.append(Outcome(role=role, measure=parts[0], description=None, time_frame=None))
        elif len(parts) == 2:
            outcomes.append(Outcome(role=role, measure=parts[0], description=None, time_frame=parts[1]))
        else:
            outcomes.append(
                Outcome(role=role, measure=parts[0], description=", ".join(parts[1:-1]), time_frame=parts[-1])
            )
    return outcomes
