"""Build TrialRecords for the extractor tests while the readers (issue 2) are not available.

Reads the two bundled shapes the tests need: the seven-line seed files and API v2 study JSON.  Once
``kg.ingest.read_paths`` works, :func:`read_records` uses it instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from kg.ingest.split import split_outcomes
from kg.records import DesignInfo, Enrollment, Intervention, Source, TrialRecord

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "data" / "examples"


def read_seed(path: Path) -> TrialRecord:
    lines = path.read_text(encoding="utf-8").split("\n")
    lines += [""] * (7 - len(lines))
    title, summary, conditions, interventions, primary, secondary, description = lines[:7]
    ivs = []
    for chunk in filter(None, interventions.split("|")):
        kind, _, name = chunk.partition(": ")
        ivs.append(Intervention(type=kind or None, name=name or chunk))
    return TrialRecord(
        trial_id=path.stem,
        source=Source(path=str(path), format="seed"),
        brief_title=title or None,
        brief_summary=summary or None,
        detailed_description=description or None,
        conditions=tuple(c for c in conditions.split("|") if c),
        interventions=tuple(ivs),
        outcomes=tuple(split_outcomes(primary, "primary") + split_outcomes(secondary, "secondary")),
    )


def read_v2(path: Path) -> TrialRecord:
    p = json.loads(path.read_text(encoding="utf-8"))["protocolSection"]
    ident = p.get("identificationModule", {})
    desc = p.get("descriptionModule", {})
    design = p.get("designModule", {})
    info = design.get("designInfo", {})
    enr = design.get("enrollmentInfo")
    ivs = p.get("armsInterventionsModule", {}).get("interventions", [])
    return TrialRecord(
        trial_id=ident["nctId"],
        source=Source(path=str(path), format="v2"),
        brief_title=ident.get("briefTitle"),
        official_title=ident.get("officialTitle"),
        brief_summary=desc.get("briefSummary"),
        detailed_description=desc.get("detailedDescription"),
        conditions=tuple(p.get("conditionsModule", {}).get("conditions", [])),
        keywords=tuple(p.get("conditionsModule", {}).get("keywords", [])),
        interventions=tuple(
            Intervention(type=i.get("type"), name=i["name"], description=i.get("description")) for i in ivs
        ),
        phases=tuple(design.get("phases", [])),
        enrollment=Enrollment(count=enr.get("count"), type=enr.get("type")) if enr else None,
        design=DesignInfo(
            allocation=info.get("allocation"),
            intervention_model=info.get("interventionModel"),
            masking=(info.get("maskingInfo") or {}).get("masking"),
            primary_purpose=info.get("primaryPurpose"),
        )
        if info
        else None,
    )


def read_records(folder: str) -> list[TrialRecord]:
    """All records of ``data/examples/<folder>`` (readers when they work, else the local parsers)."""
    base = EXAMPLES / folder
    try:
        from kg.ingest import read_paths

        items = list(read_paths([str(base)]))
        return sorted((r for r in items if isinstance(r, TrialRecord)), key=lambda r: r.trial_id)
    except NotImplementedError:
        pass
    reader = read_seed if folder == "seeds" else read_v2
    suffix = "*.txt" if folder == "seeds" else "*.json"
    return [reader(p) for p in sorted(base.glob(suffix))]
