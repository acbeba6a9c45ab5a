"""Views of the projected graph: the full graph is a hairball, a view answers one question.

Each view maps the full projection (:func:`kg.export.project_rdf`, attribute values as lists) to a smaller
or derived ``MultiDiGraph`` with the same node ids (IRIs), so a node means the same thing in every view:

* ``full`` — every resource and object property;
* ``design`` — trial → product → antigen / costimulatory and signalling domain, trial → disease (the
  construct folded into its product; strategy, phase, vector and cell source as attributes);
* ``antigen-cotargeting`` — antigens linked by the number of trials (``weight``) and products targeting both;
* ``trial-similarity`` — trials linked by shared antigens, domains, diseases and endpoint classes
  (``weight`` = Jaccard similarity of those features), each trial keeping its ``top_k`` strongest links;
* ``endpoints`` — trial → endpoint class (outcome counts by role, longest follow-up) → criteria.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import combinations
from typing import Any

import networkx as nx

from kg.errors import UsageError
from kg.namespace import CARTKG

P = {
    name: str(getattr(CARTKG, name))
    for name in (
        "hasProduct",
        "hasConstruct",
        "targetsAntigen",
        "hasCostimulatoryDomain",
        "hasSignallingDomain",
        "studiesDisease",
        "hasTargetingStrategy",
        "hasPhase",
        "usesVector",
        "hasCellSource",
        "hasCellType",
        "hasOutcome",
        "hasEndpointClass",
        "assessedWith",
        "hasRole",
        "hasTimeFrame",
        "windowEnd",
    )
}
TRIAL_TYPES = frozenset({"ClinicalTrial", "InterventionalTrial"})
DEFAULT_TOP_K = 5


# --------------------------------------------------------------------------- helpers on the projection


def targets(g: nx.MultiDiGraph, node: str, predicate: str) -> list[str]:
    """Objects of ``node``'s ``predicate`` edges, sorted and distinct."""
    if node not in g:
        return []
    return sorted({v for _, v, d in g.out_edges(node, data=True) if d.get("predicate") == predicate})


def trials(g: nx.MultiDiGraph) -> list[str]:
    return sorted(n for n, d in g.nodes(data=True) if d.get("type") in TRIAL_TYPES)


def label(g: nx.MultiDiGraph, node: str) -> str:
    return str(g.nodes[node].get("label", node))


def first(values: Any) -> Any:
    if isinstance(values, list | tuple):
        return values[0] if values else None
    return values


def labels(g: nx.MultiDiGraph, nodes: Iterable[str]) -> list[str]:
    return sorted(label(g, n) for n in nodes)


def copy_node(src: nx.MultiDiGraph, dst: nx.MultiDiGraph, node: str, **extra: Any) -> None:
    dst.add_node(node, **{**src.nodes[node], **extra})


def product_constructs(g: nx.MultiDiGraph, product: str) -> list[str]:
    return targets(g, product, P["hasConstruct"])


def product_values(g: nx.MultiDiGraph, product: str, predicate: str) -> list[str]:
    """Values of ``predicate`` on the product or on any of its constructs."""
    found = set(targets(g, product, predicate))
    for construct in product_constructs(g, product):
        found.update(targets(g, construct, predicate))
    return sorted(found)


def trial_values(g: nx.MultiDiGraph, trial: str, predicate: str) -> list[str]:
    """Values of ``predicate`` over a trial's products (and their constructs)."""
    found: set[str] = set()
    for product in targets(g, trial, P["hasProduct"]):
        found.update(product_values(g, product, predicate))
    return sorted(found)


def outcome_days(g: nx.MultiDiGraph, outcome: str) -> float | None:
    """The end of an outcome's observation window in days (None when not parsed)."""
    for frame in targets(g, outcome, P["hasTimeFrame"]):
        for end in targets(g, frame, P["windowEnd"]):
            days = first(g.nodes[end].get("durationInDays"))
            if isinstance(days, int | float) and not isinstance(days, bool):
                return float(days)
    return None


def outcome_role(g: nx.MultiDiGraph, outcome: str) -> str:
    roles = targets(g, outcome, P["hasRole"])
    if roles:
        return label(g, roles[0])
    kind = str(g.nodes[outcome].get("type", ""))
    return kind.removesuffix("Outcome").lower() or "unknown"


# --------------------------------------------------------------------------- views


def full_view(g: nx.MultiDiGraph, **_: Any) -> nx.MultiDiGraph:
    return g


def design_view(g: nx.MultiDiGraph, **_: Any) -> nx.MultiDiGraph:
    """Trial → product → antigen / domain; trial → disease."""
    out = nx.MultiDiGraph()
    for trial in trials(g):
        copy_node(g, out, trial, **trial_summary(g, trial))
        for disease in targets(g, trial, P["studiesDisease"]):
            copy_node(g, out, disease)
            add_edge(out, trial, disease, "studiesDisease")
        for product in targets(g, trial, P["hasProduct"]):
            extra = {
                name: labels(g, product_values(g, product, P[pred]))
                for name, pred in (
                    ("vector", "usesVector"),
                    ("cellSource", "hasCellSource"),
                    ("cellType", "hasCellType"),
                )
            }
            for construct in product_constructs(g, product):
                for key, value in g.nodes[construct].items():
                    if key not in ("label", "type", "types", "trial"):
                        extra.setdefault(key, value)
            copy_node(g, out, product, **extra)
            add_edge(out, trial, product, "hasProduct")
            for pred in ("targetsAntigen", "hasCostimulatoryDomain", "hasSignallingDomain"):
                for value in product_values(g, product, P[pred]):
                    copy_node(g, out, value)
                    add_edge(out, product, value, pred)
    return out


def trial_summary(g: nx.MultiDiGraph, trial: str) -> dict[str, Any]:
    """Design facts of a trial as attributes (labels of the vocabulary values it points to)."""
    return {
        "strategy": labels(g, targets(g, trial, P["hasTargetingStrategy"])),
        "phase": labels(g, targets(g, trial, P["hasPhase"])),
        "antigens": labels(g, trial_values(g, trial, P["targetsAntigen"])),
        "diseases": labels(g, targets(g, trial, P["studiesDisease"])),
        "cellSource": labels(g, trial_values(g, trial, P["hasCellSource"])),
    }


def add_edge(g: nx.MultiDiGraph, u: str, v: str, name: str, **attrs: Any) -> None:
    g.add_edge(u, v, key=name, label=name, **attrs)


def antigen_cotargeting_view(g: nx.MultiDiGraph, **_: Any) -> nx.MultiDiGraph:
    """Antigens linked by the trials (``weight``, ``trials``) and products (``products``) targeting both."""
    trial_sets: dict[str, set[str]] = defaultdict(set)  # antigen -> trials
    product_sets: dict[str, set[str]] = defaultdict(set)
    pair_trials: dict[tuple[str, str], set[str]] = defaultdict(set)
    pair_products: dict[tuple[str, str], set[str]] = defaultdict(set)
    for trial in trials(g):
        tid = label(g, trial)
        antigens = trial_values(g, trial, P["targetsAntigen"])
        for a in antigens:
            trial_sets[a].add(tid)
        for pair in combinations(antigens, 2):
            pair_trials[pair].add(tid)
        for product in targets(g, trial, P["hasProduct"]):
            on_product = product_values(g, product, P["targetsAntigen"])
            for a in on_product:
                product_sets[a].add(product)
            for pair in combinations(on_product, 2):
                pair_products[pair].add(product)
    out = nx.MultiDiGraph()
    for a in sorted(trial_sets):
        copy_node(g, out, a, type="Antigen", trials=len(trial_sets[a]), products=len(product_sets[a]))
    for a, b in sorted(pair_trials):
        ts = sorted(pair_trials[(a, b)])
        add_edge(
            out,
            a,
            b,
            "cotargetedWith",
            weight=len(ts),
            trials=len(ts),
            products=len(pair_products.get((a, b), ())),
            trial_ids=ts,
        )
    return out


FEATURES = (
    ("antigens", lambda g, t: trial_values(g, t, P["targetsAntigen"])),
    (
        "domains",
        lambda g, t: (
            trial_values(g, t, P["hasCostimulatoryDomain"]) + trial_values(g, t, P["hasSignallingDomain"])
        ),
    ),
    ("diseases", lambda g, t: targets(g, t, P["studiesDisease"])),
    (
        "endpoints",
        lambda g, t: sorted(
            {e for o in targets(g, t, P["hasOutcome"]) for e in targets(g, o, P["hasEndpointClass"])}
        ),
    ),
)


def trial_similarity_view(g: nx.MultiDiGraph, top_k: int = DEFAULT_TOP_K, **_: Any) -> nx.MultiDiGraph:
    """Trials linked by shared design features; ``weight`` is their Jaccard similarity (4 decimals)."""
    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, not {top_k}")
    ts = trials(g)
    features = {t: {(kind, v) for kind, get in FEATURES for v in get(g, t)} for t in ts}
    by_feature: dict[tuple[str, str], list[str]] = defaultdict(list)
    for t in ts:
        for f in features[t]:
            by_feature[f].append(t)
    shared: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for f, members in by_feature.items():
        for pair in combinations(sorted(members), 2):
            shared[pair].add(f)
    scored = {pair: (len(fs) / len(features[pair[0]] | features[pair[1]]), fs) for pair, fs in shared.items()}
    ranked: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for (a, b), (w, fs) in scored.items():
        ranked[a].append((-w, -len(fs), b))
        ranked[b].append((-w, -len(fs), a))
    keep = {tuple(sorted((t, other))) for t, rows in ranked.items() for _, _, other in sorted(rows)[:top_k]}
    out = nx.MultiDiGraph()
    for t in ts:
        copy_node(g, out, t, **trial_summary(g, t), features=len(features[t]))
    for a, b in sorted(keep):
        w, fs = scored[(a, b)]
        link: dict[str, Any] = {"weight": round(w, 4), "shared": len(fs)}
        for kind, _getter in FEATURES:
            link[f"shared_{kind}"] = labels(g, [v for k, v in fs if k == kind])
        add_edge(out, a, b, "similarTo", **link)
    return out


def endpoints_view(g: nx.MultiDiGraph, **_: Any) -> nx.MultiDiGraph:
    """Trial → endpoint class (``weight`` = outcomes, by role, longest follow-up) → criteria."""
    out = nx.MultiDiGraph()
    criteria_outcomes: dict[tuple[str, str], int] = defaultdict(int)
    criteria_trials: dict[tuple[str, str], set[str]] = defaultdict(set)
    for trial in trials(g):
        copy_node(g, out, trial, **trial_summary(g, trial))
        per_endpoint: dict[str, list[str]] = defaultdict(list)
        for outcome in targets(g, trial, P["hasOutcome"]):
            for endpoint in targets(g, outcome, P["hasEndpointClass"]):
                per_endpoint[endpoint].append(outcome)
                for crit in targets(g, outcome, P["assessedWith"]):
                    criteria_outcomes[(endpoint, crit)] += 1
                    criteria_trials[(endpoint, crit)].add(trial)
        for endpoint, outcomes in sorted(per_endpoint.items()):
            copy_node(g, out, endpoint)
            roles = [outcome_role(g, o) for o in outcomes]
            days = [d for d in (outcome_days(g, o) for o in outcomes) if d is not None]
            attrs: dict[str, Any] = {"weight": len(outcomes), "outcomes": len(outcomes)}
            for role in ("primary", "secondary", "other"):
                attrs[role] = roles.count(role)
            if days:
                attrs["max_follow_up_days"] = max(days)
            add_edge(out, trial, endpoint, "usesEndpoint", **attrs)
    for (endpoint, crit), n in sorted(criteria_outcomes.items()):
        copy_node(g, out, crit)
        add_edge(
            out,
            endpoint,
            crit,
            "assessedWith",
            weight=n,
            outcomes=n,
            trials=len(criteria_trials[(endpoint, crit)]),
        )
    return out


# the object properties each view walks (None: everything); the projection reads only these
PRODUCT_PATH = ("hasProduct", "hasConstruct", "targetsAntigen")
DESIGN_PATH = (
    *PRODUCT_PATH,
    "hasCostimulatoryDomain",
    "hasSignallingDomain",
    "studiesDisease",
    "hasTargetingStrategy",
    "hasPhase",
    "usesVector",
    "hasCellSource",
    "hasCellType",
)
VIEW_PREDICATES: dict[str, tuple[str, ...] | None] = {
    "full": None,
    "design": tuple(P[n] for n in DESIGN_PATH),
    "antigen-cotargeting": tuple(P[n] for n in PRODUCT_PATH),
    "trial-similarity": tuple(P[n] for n in (*DESIGN_PATH, "hasOutcome", "hasEndpointClass")),
    "endpoints": tuple(
        P[n]
        for n in (
            *DESIGN_PATH,
            "hasOutcome",
            "hasEndpointClass",
            "assessedWith",
            "hasRole",
            "hasTimeFrame",
            "windowEnd",
        )
    ),
}

VIEWS: dict[str, Callable[..., nx.MultiDiGraph]] = {
    "full": full_view,
    "design": design_view,
    "antigen-cotargeting": antigen_cotargeting_view,
    "trial-similarity": trial_similarity_view,
    "endpoints": endpoints_view,
}


def apply_view(g: nx.MultiDiGraph, view: str, **options: Any) -> nx.MultiDiGraph:
    fn = VIEWS.get(view)
    if fn is None:
        raise UsageError(f"unknown view {view!r}; known: {', '.join(VIEWS)}")
    return fn(g, **{k: v for k, v in options.items() if v is not None})


__all__ = ["DEFAULT_TOP_K", "VIEWS", "VIEW_PREDICATES", "apply_view"]
