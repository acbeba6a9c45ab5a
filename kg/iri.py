"""Every IRI of the graph is minted here, from stable keys (never ``hash()`` or insertion order).

* a trial with an NCT number is ``https://clinicaltrials.gov/study/NCT…``; any other trial, and every
  node that belongs to one trial, is ``https://w3id.org/cartkg/id/<kind>/<trial_id>/<key>…``;
* a vocabulary value that the ontology does not declare is ``…/id/vocab/<Class>/<value>``;
* named graphs are ``…/id/graph/<trial_id>`` and ``https://w3id.org/cartkg/graph/vocabulary``.

Keys are percent-encoded with nothing left safe but unreserved characters, so ``mint`` is injective
for a given kind and number of keys, and :func:`parse_minted` inverts it.
"""

from __future__ import annotations

import hashlib
from urllib.parse import quote, unquote

from rdflib import URIRef

from kg.records import is_nct_id

BASE = "https://w3id.org/cartkg/"
ID = BASE + "id/"
CTGOV_STUDY = "https://clinicaltrials.gov/study/"
VOCABULARY_GRAPH = URIRef(BASE + "graph/vocabulary")
AGENT = URIRef(ID + "agent/cartkg")

# kinds whose first key is the trial id (a node that belongs to exactly one trial)
TRIAL_KINDS = frozenset(
    {
        "trial",
        "graph",
        "record",
        "field",
        "activity",
        "intervention",
        "product",
        "construct",
        "dose",
        "fraction",
        "outcome",
        "timeframe",
        "duration",
        "timepoint",
        "evidence",
        "target",
        "selector",
    }
)
SHARED_KINDS = frozenset({"vocab", "agent"})


def mint(kind: str, *keys: str | int) -> URIRef:
    """The IRI of a node of ``kind`` identified by ``keys`` (trial id first for trial-local kinds)."""
    if kind not in TRIAL_KINDS and kind not in SHARED_KINDS:
        raise ValueError(f"unknown IRI kind {kind!r}")
    if not keys or any(str(k) == "" for k in keys):
        raise ValueError(f"IRI of kind {kind!r} needs non-empty keys, got {keys!r}")
    if kind == "trial" and len(keys) == 1 and is_nct_id(str(keys[0])):
        return URIRef(CTGOV_STUDY + str(keys[0]))
    return URIRef(ID + kind + "/" + "/".join(quote(str(k), safe="") for k in keys))


def trial_iri(trial_id: str) -> URIRef:
    return mint("trial", trial_id)


def graph_iri(trial_id: str) -> URIRef:
    """The named graph that holds one trial's statements."""
    return mint("graph", trial_id)


def parse_minted(iri: str) -> tuple[str, tuple[str, ...]] | None:
    """Invert :func:`mint`: ``(kind, keys)`` for an IRI minted here, else None."""
    if iri.startswith(CTGOV_STUDY):
        rest = iri[len(CTGOV_STUDY) :]
        return ("trial", (rest,)) if is_nct_id(rest) else None
    if not iri.startswith(ID):
        return None
    kind, _, rest = iri[len(ID) :].partition("/")
    if kind not in TRIAL_KINDS and kind not in SHARED_KINDS or not rest:
        return None
    return kind, tuple(unquote(k) for k in rest.split("/"))


def trial_of(iri: str) -> str | None:
    """The trial id a node belongs to (None for shared vocabulary and foreign IRIs)."""
    parsed = parse_minted(iri)
    if parsed is None or parsed[0] not in TRIAL_KINDS:
        return None
    return parsed[1][0]


def digest(*parts: str | int) -> str:
    """A stable 16-hex-digit key for content that has no natural short key (an evidence span)."""
    joined = "\x1f".join(str(p) for p in parts)
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:16]
