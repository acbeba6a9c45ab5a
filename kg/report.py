"""The design-landscape report: one self-contained HTML page of figures about the trials in a graph.

``write_report(store, out)`` queries the graph with SPARQL, draws each figure with matplotlib (Agg backend)
as SVG and inlines it, so the page needs no network, CDN or script.  SVG output is reproducible: each
figure has its own ``svg.hashsalt`` (ids unique within the page, identical across runs), text stays text
(``svg.fonttype = none``) and no date is written.  Every figure comes with its numbers in a table.
"""

from __future__ import annotations

import html
import io
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyoxigraph as ox

from kg.iri import CTGOV_STUDY
from kg.records import is_nct_id

DEFAULT_TITLE = "cartkg design landscape"
MAX_ROWS = 25  # bars per figure; the rest is summed into one "other" bar
NOT_STATED = "not stated"
PREFIXES = """PREFIX cartkg: <https://w3id.org/cartkg/>
PREFIX skos: <http://www.w3.org/2004/02/skos/core#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
"""
ROLE_ORDER = ("primary", "secondary", "other")
COLOURS = (
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#e15759",
    "#76b7b2",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)


# --------------------------------------------------------------------------- data from the graph


@dataclass
class Landscape:
    """What the figures show, gathered from the graph once."""

    trials: dict[str, dict[str, Any]] = field(default_factory=dict)  # trial IRI -> facts
    values: dict[str, dict[str, set[str]]] = field(default_factory=dict)  # facet -> trial IRI -> values
    construct_pairs: list[tuple[str, str, str]] = field(default_factory=list)  # (trial, antigen, costim)
    outcomes: list[dict[str, Any]] = field(default_factory=list)  # trial, endpoint, role, days
    timepoints: list[tuple[str, float]] = field(default_factory=list)  # (outcome, day offset)
    products: int = 0

    def facet(self, name: str, trial: str) -> list[str]:
        return sorted(self.values.get(name, {}).get(trial, set()))


FACETS = {
    "antigen": "cartkg:hasProduct/cartkg:hasConstruct/cartkg:targetsAntigen",
    "costim": "cartkg:hasProduct/cartkg:hasConstruct/cartkg:hasCostimulatoryDomain",
    "strategy": "cartkg:hasTargetingStrategy",
    "disease": "cartkg:studiesDisease",
    "phase": "cartkg:hasPhase",
    "cell_source": "cartkg:hasProduct/cartkg:hasCellSource",
}
NAME = "COALESCE(?notation, ?label, STR(?v))"


def select(store: ox.Store, query: str) -> list[dict[str, Any]]:
    """Rows of a SELECT over the union of all graphs, as ``{variable: python value}`` (unbound left out)."""
    rows = []
    solutions = store.query(PREFIXES + query, use_default_graph_as_union=True)
    assert isinstance(solutions, ox.QuerySolutions)
    names = [v.value for v in solutions.variables]
    for solution in solutions:
        row = {}
        for name in names:
            term = solution[name]
            if term is not None:
                row[name] = term.value
        rows.append(row)
    return rows


def gather(store: ox.Store) -> Landscape:
    """Everything the report needs, in a few SPARQL queries."""
    land = Landscape()
    for row in select(
        store,
        """SELECT ?trial ?tid ?nct ?title ?status ?enrollment WHERE {
            ?trial a cartkg:ClinicalTrial .
            OPTIONAL { ?trial cartkg:trialId ?tid } OPTIONAL { ?trial cartkg:nctId ?nct }
            OPTIONAL { ?trial cartkg:title ?title } OPTIONAL { ?trial cartkg:overallStatus ?status }
            OPTIONAL { ?trial cartkg:enrollment ?enrollment } }
            ORDER BY ?trial ?tid ?nct ?title ?status ?enrollment""",
    ):
        facts = land.trials.setdefault(row["trial"], {})
        for key, value in row.items():
            if key != "trial":
                facts.setdefault(key, value)  # several titles (unlikely): the first in sorted order
    for facet, path in FACETS.items():
        rows = select(
            store,
            f"""SELECT ?trial ({NAME} AS ?name) WHERE {{
                ?trial a cartkg:ClinicalTrial ; {path} ?v .
                OPTIONAL {{ ?v skos:notation ?notation }} OPTIONAL {{ ?v rdfs:label ?label }} }}""",
        )
        table: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            table[row["trial"]].add(row["name"])
        land.values[facet] = dict(table)
    for row in select(
        store,
        f"""SELECT ?trial ?construct ?antigen ({NAME} AS ?costim) WHERE {{
            ?trial cartkg:hasProduct/cartkg:hasConstruct ?construct .
            ?construct cartkg:targetsAntigen ?a .
            OPTIONAL {{ ?a skos:notation ?antigen }}
            OPTIONAL {{ ?construct cartkg:hasCostimulatoryDomain ?v .
                       OPTIONAL {{ ?v skos:notation ?notation }} OPTIONAL {{ ?v rdfs:label ?label }} }} }}""",
    ):
        costim = row.get("costim") or NOT_STATED
        land.construct_pairs.append((row["trial"], row.get("antigen", "?"), costim))
    for row in select(
        store,
        f"""SELECT ?trial ?outcome ?role ({NAME} AS ?endpoint) ?days WHERE {{
            ?trial cartkg:hasOutcome ?outcome .
            ?outcome cartkg:hasEndpointClass ?v .
            OPTIONAL {{ ?v skos:notation ?notation }} OPTIONAL {{ ?v rdfs:label ?label }}
            OPTIONAL {{ ?outcome cartkg:hasRole/skos:notation ?role }}
            OPTIONAL {{ ?outcome cartkg:hasTimeFrame/cartkg:windowEnd/cartkg:durationInDays ?days }} }}""",
    ):
        row["days"] = float(row["days"]) if "days" in row else None
        land.outcomes.append(row)
    for row in select(
        store,
        """SELECT ?outcome ?point ?days WHERE {
            ?outcome cartkg:hasTimeFrame/cartkg:hasTimepoint ?point .
            ?point cartkg:timepointOffset/cartkg:durationInDays ?days }""",
    ):
        land.timepoints.append((row["outcome"], float(row["days"])))
    [count] = select(store, "SELECT (COUNT(DISTINCT ?p) AS ?n) WHERE { ?p a cartkg:CarTProduct }")
    land.products = int(count.get("n", 0))
    land.construct_pairs.sort()
    land.outcomes.sort(key=lambda r: (r["trial"], r["outcome"], r["endpoint"], r.get("role", "")))
    land.timepoints.sort()
    return land


# --------------------------------------------------------------------------- counting


def count_trials(land: Landscape, facet: str) -> Counter[str]:
    """Trials per value of a facet (a trial with two antigens counts once for each)."""
    c: Counter[str] = Counter()
    for values in land.values.get(facet, {}).values():
        c.update(values)
    return c


def top(counter: Counter[str], limit: int = MAX_ROWS) -> list[tuple[str, int]]:
    """The largest counts (ties by name), and the rest summed as one ``other`` row."""
    rows = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    if len(rows) <= limit:
        return rows
    rest = rows[limit - 1 :]
    return rows[: limit - 1] + [(f"other ({len(rest)})", sum(n for _, n in rest))]


def limit_rows(
    table: dict[tuple[str, str], int], limit: int = MAX_ROWS
) -> tuple[list[str], dict[tuple[str, str], int]]:
    """Rows by total (largest first); past ``limit`` the rest is summed into one ``other (n)`` row."""
    totals: Counter[str] = Counter()
    for (r, _), n in table.items():
        totals[r] += n
    rows = [r for r, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))]
    if len(rows) <= limit:
        return rows, dict(table)
    keep, rest = rows[: limit - 1], set(rows[limit - 1 :])
    other = f"other ({len(rest)})"
    out: dict[tuple[str, str], int] = defaultdict(int)
    for (r, c), n in table.items():
        out[(other if r in rest else r, c)] += n
    return [*keep, other], dict(out)


def fmt_day(day: float) -> str:
    """``6 h`` below a day, else ``d28`` (a tenth of a day kept where it is not whole)."""
    if day < 1:
        return f"{round(day * 24, 1):g} h"
    return f"d{round(day, 1):g}"


def cross(land: Landscape, row_facet: str, col_facet: str) -> dict[tuple[str, str], int]:
    """Trials per (row value, column value); a trial without a column value counts as ``not stated``."""
    table: dict[tuple[str, str], int] = defaultdict(int)
    for trial in land.trials:
        for r in land.facet(row_facet, trial):
            for c in land.facet(col_facet, trial) or [NOT_STATED]:
                table[(r, c)] += 1
    return dict(table)


def cell_sources(land: Landscape) -> Counter[str]:
    c: Counter[str] = Counter()
    for trial in land.trials:
        sources = land.facet("cell_source", trial)
        c[" + ".join(sources) if sources else NOT_STATED] += 1
    return c


def costim_by_antigen(land: Landscape) -> dict[tuple[str, str], int]:
    """Trials per (antigen, costimulatory domain) on the same construct."""
    seen = {(antigen, costim, trial) for trial, antigen, costim in land.construct_pairs}
    table: dict[tuple[str, str], int] = defaultdict(int)
    for antigen, costim, _ in seen:
        table[(antigen, costim)] += 1
    return dict(table)


def endpoint_roles(land: Landscape) -> dict[tuple[str, str], int]:
    """Trials per (endpoint class, role)."""
    seen = {(r["endpoint"], r.get("role", "other"), r["trial"]) for r in land.outcomes}
    table: dict[tuple[str, str], int] = defaultdict(int)
    for endpoint, role, _ in seen:
        table[(endpoint, role)] += 1
    return dict(table)


def follow_up(land: Landscape) -> dict[str, list[float]]:
    """End of the observation window (days) of each outcome, per endpoint class."""
    out: dict[str, list[float]] = defaultdict(list)
    for r in land.outcomes:
        if r["days"] is not None:
            out[r["endpoint"]].append(r["days"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def schedule_days(land: Landscape) -> Counter[float]:
    """How many outcome schedules sample each day (offsets rounded to the hour)."""
    c: Counter[float] = Counter()
    for _, day in sorted(set(land.timepoints)):
        c[round(day * 24) / 24] += 1
    return c


# --------------------------------------------------------------------------- figures


@dataclass
class Figure:
    key: str
    title: str
    caption: str
    svg: str
    table: list[list[Any]]  # header row first


def pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def render(key: str, draw: Callable[[Any], None], size: tuple[float, float]) -> str:
    """Draw one figure and return its SVG element (deterministic bytes, ids unique to ``key``)."""
    import matplotlib

    plt = pyplot()
    with matplotlib.rc_context(
        {
            "svg.hashsalt": f"cartkg-{key}",
            "svg.fonttype": "none",
            "font.size": 9,
            "axes.spines.top": False,
            "axes.spines.right": False,
        }
    ):
        fig = plt.figure(figsize=size)
        try:
            draw(fig)
            buffer = io.StringIO()
            fig.savefig(
                buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "cartkg"}
            )
        finally:
            plt.close(fig)
    svg = buffer.getvalue()
    svg = scope_ids(svg[svg.index("<svg") :], key)
    return re.sub(r"<svg ", f'<svg role="img" aria-labelledby="{key}-title" ', svg, count=1)


def scope_ids(svg: str, key: str) -> str:
    """Prefix every id (and each reference to one) with the figure's key: ids stay unique in the page."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="svg-{key}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#svg-{key}-{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#svg-{key}-{m.group(1)}"', svg)


def empty(fig: Any, message: str) -> None:
    ax = fig.add_subplot()
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, color="#666666")


def height(rows: int) -> float:
    return max(2.2, 0.6 + 0.28 * rows)


def barh(key: str, rows: list[tuple[str, int]], xlabel: str, none: str) -> str:
    def draw(fig: Any) -> None:
        if not rows:
            return empty(fig, none)
        ax = fig.add_subplot()
        names = [r[0] for r in rows][::-1]
        values = [r[1] for r in rows][::-1]
        bars = ax.barh(names, values, color=COLOURS[0])
        ax.bar_label(bars, padding=2, fontsize=8)
        ax.set_xlabel(xlabel)
        ax.xaxis.get_major_locator().set_params(integer=True)

    return render(key, draw, (7.5, height(len(rows))))


def stacked(
    key: str,
    table: dict[tuple[str, str], int],
    rows: list[str],
    cols: list[str],
    xlabel: str,
    legend: str,
    none: str,
) -> str:
    def draw(fig: Any) -> None:
        if not rows:
            return empty(fig, none)
        ax = fig.add_subplot()
        left = [0] * len(rows)
        names = rows[::-1]
        for i, col in enumerate(cols):
            values = [table.get((r, col), 0) for r in names]
            ax.barh(names, values, left=left, label=col, color=COLOURS[i % len(COLOURS)])
            left = [a + b for a, b in zip(left, values, strict=True)]
        ax.set_xlabel(xlabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(title=legend, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, frameon=False)

    return render(key, draw, (7.5, height(len(rows))))


def heatmap(key: str, table: dict[tuple[str, str], int], rows: list[str], cols: list[str], none: str) -> str:
    def draw(fig: Any) -> None:
        if not rows or not cols:
            return empty(fig, none)
        ax = fig.add_subplot()
        grid = [[table.get((r, c), 0) for c in cols] for r in rows]
        # pcolormesh stays vector in SVG (imshow would embed a PNG)
        ax.pcolormesh(grid, cmap="Blues", vmin=0, edgecolors="white", linewidth=1)
        ax.invert_yaxis()
        ax.set_xticks([j + 0.5 for j in range(len(cols))], cols, rotation=30, ha="right")
        ax.set_yticks([i + 0.5 for i in range(len(rows))], rows)
        peak = max(max(r) for r in grid) or 1
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                if value:
                    ax.text(
                        j + 0.5,
                        i + 0.5,
                        str(value),
                        ha="center",
                        va="center",
                        fontsize=8,
                        color="white" if value > peak / 2 else "black",
                    )
        ax.set_title("trials (number in each cell)", fontsize=8, loc="left", color="#4a5664")
        ax.spines[:].set_visible(False)

    return render(key, draw, (max(3.5, 1.2 + 0.8 * len(cols)), height(len(rows))))


def follow_up_figure(key: str, data: dict[str, list[float]]) -> str:
    import numpy as np

    order = sorted(data, key=lambda e: (float(np.median(data[e])), e))

    def draw(fig: Any) -> None:
        if not order:
            return empty(fig, "no outcome has a parsed time frame")
        ax = fig.add_subplot()
        months = [[d / 30.4375 for d in data[e]] for e in order]
        ax.boxplot(
            months,
            orientation="horizontal",
            tick_labels=order,
            showfliers=False,
            medianprops={"color": COLOURS[1]},
        )
        rng = np.random.default_rng(0)
        for i, values in enumerate(months, start=1):
            jitter = rng.uniform(-0.18, 0.18, len(values))
            ax.scatter(values, [i + j for j in jitter], s=10, color=COLOURS[0], alpha=0.6, zorder=3)
        ax.set_xscale("log")
        low = min(min(v) for v in months)
        high = max(max(v) for v in months)
        marks = [
            (1 / 730.5, "1 h"),
            (1 / 30.4375, "1 d"),
            (0.23, "1 w"),
            (1, "1 m"),
            (3, "3 m"),
            (6, "6 m"),
            (12, "1 y"),
            (24, "2 y"),
            (60, "5 y"),
            (120, "10 y"),
            (240, "20 y"),
        ]
        shown = [(t, name) for t, name in marks if low / 3 <= t <= high * 3] or marks[3:7]
        ax.set_xticks([t for t, _ in shown], [name for _, name in shown])
        ax.minorticks_off()
        ax.set_xlabel("end of the observation window (log scale)")

    return render(key, draw, (7.5, height(len(order))))


def schedule_figure(key: str, days: Counter[float]) -> str:
    def draw(fig: Any) -> None:
        if not days:
            return empty(fig, "no outcome lists assessment days")
        ax = fig.add_subplot()
        xs = sorted(days)
        ys = [days[x] for x in xs]
        ax.vlines(xs, 0, ys, color=COLOURS[0], linewidth=1.5)
        ax.plot(xs, ys, "o", color=COLOURS[0], markersize=4)
        ax.set_xscale("symlog", linthresh=1)
        ticks = [t for t in (0, 1, 7, 14, 28, 90, 180, 365, 730, 1826) if t <= max(xs) * 1.5]
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_xlabel("day after the anchor event (symmetric log scale)")
        ax.set_ylabel("outcome schedules")
        ax.set_ylim(0, max(ys) * 1.15)
        for x, y in sorted(days.items(), key=lambda kv: (-kv[1], kv[0]))[:5]:
            ax.annotate(
                fmt_day(x), (x, y), textcoords="offset points", xytext=(0, 4), ha="center", fontsize=7
            )

    return render(key, draw, (7.5, 3.2))


def network_figure(key: str, g: Any) -> str:
    """Antigens that share a trial with another antigen (isolated antigens are left out of the drawing)."""
    import math

    import networkx as nx

    simple = nx.Graph()
    for u, v, d in sorted(g.edges(data=True), key=lambda e: (e[0], e[1])):
        simple.add_edge(u, v, weight=float(d.get("weight", 1)))
    simple = nx.relabel_nodes(simple, {n: n for n in sorted(simple)})

    def draw(fig: Any) -> None:
        if simple.number_of_nodes() == 0:
            return empty(fig, "no two antigens are targeted by the same trial")
        ax = fig.add_subplot()
        ax.axis("off")
        ordered = nx.Graph()
        ordered.add_nodes_from(sorted(simple))
        ordered.add_edges_from(sorted(simple.edges(data=True)))
        pos = nx.spring_layout(
            ordered, seed=7, weight="weight", k=2.5 / math.sqrt(len(ordered)), iterations=200
        )
        trials = {n: int(g.nodes[n].get("trials", 1)) for n in ordered}
        most = max(trials.values())
        sizes = [250 + 1400 * math.sqrt(trials[n] / most) for n in ordered]
        weights = [ordered.edges[e]["weight"] for e in ordered.edges]
        top_weight = max(weights)
        nx.draw_networkx_edges(
            ordered,
            pos,
            ax=ax,
            width=[0.6 + 5 * w / top_weight for w in weights],
            edge_color="#9aa9bb",
            alpha=0.7,
        )
        nx.draw_networkx_nodes(
            ordered, pos, ax=ax, node_size=sizes, node_color="#a8c6e8", edgecolors=COLOURS[0]
        )
        nx.draw_networkx_labels(
            ordered,
            pos,
            labels={n: g.nodes[n].get("label", n) for n in ordered},
            ax=ax,
            font_size=8,
            font_color="#111111",
        )
        strongest = sorted(ordered.edges, key=lambda e: (-ordered.edges[e]["weight"], e))[:12]
        nx.draw_networkx_edge_labels(
            ordered,
            pos,
            ax=ax,
            font_size=7,
            edge_labels={e: f"{ordered.edges[e]['weight']:g}" for e in strongest},
        )
        ax.margins(0.08)

    return render(key, draw, (8.0, 6.5))


def figures(land: Landscape, cotargeting: Any) -> list[Figure]:
    out = []
    antigens = top(count_trials(land, "antigen"))
    out.append(
        Figure(
            "antigens",
            "Trials per target antigen",
            "Trials whose products target each antigen; a trial aiming at two antigens counts for both.",
            barh("antigens", antigens, "trials", "no trial has a target antigen"),
            [["antigen", "trials"], *[list(r) for r in antigens]],
        )
    )
    diseases, strat = limit_rows(cross(land, "disease", "strategy"))
    strategies = sorted({c for _, c in strat}, key=lambda s: (s == NOT_STATED, s))
    out.append(
        Figure(
            "strategies",
            "Targeting strategy by disease",
            "Trials per disease, split by targeting strategy (single, bispecific, bicistronic, cocktail, "
            "sequential, multi-target).",
            stacked(
                "strategies", strat, diseases, strategies, "trials", "strategy", "no trial names a disease"
            ),
            [["disease", *strategies], *[[d, *[strat.get((d, s), 0) for s in strategies]] for d in diseases]],
        )
    )
    antigen_rows, costim = limit_rows(costim_by_antigen(land), limit=15)
    domains = sorted({c for _, c in costim}, key=lambda s: (s == NOT_STATED, s))
    out.append(
        Figure(
            "costim",
            "Costimulatory domain by antigen",
            "Trials per antigen and the costimulatory domain on the same CAR construct.",
            heatmap("costim", costim, antigen_rows, domains, "no construct names its antigen"),
            [["antigen", *domains], *[[a, *[costim.get((a, d), 0) for d in domains]] for a in antigen_rows]],
        )
    )
    sources = top(cell_sources(land))
    out.append(
        Figure(
            "cells",
            "Autologous vs allogeneic",
            "Trials by the source of their cells (the patient's own or a donor's).",
            barh("cells", sources, "trials", "no trials"),
            [["cell source", "trials"], *[list(r) for r in sources]],
        )
    )
    endpoints, roles = limit_rows(endpoint_roles(land), limit=30)
    role_cols = [r for r in ROLE_ORDER if any(k[1] == r for k in roles)]
    out.append(
        Figure(
            "endpoints",
            "Endpoint usage, primary vs secondary",
            "Trials using each endpoint class as a primary, secondary or other outcome.",
            stacked("endpoints", roles, endpoints, role_cols, "trials", "role", "no outcomes"),
            [["endpoint", *role_cols], *[[e, *[roles.get((e, r), 0) for r in role_cols]] for e in endpoints]],
        )
    )
    durations = follow_up(land)
    out.append(
        Figure(
            "followup",
            "Follow-up duration per endpoint",
            "End of the observation window of each outcome (one dot per outcome; box: quartiles).",
            follow_up_figure("followup", durations),
            [
                ["endpoint", "outcomes", "shortest (days)", "median (days)", "longest (days)"],
                *[[e, len(v), f"{v[0]:g}", f"{_median(v):g}", f"{v[-1]:g}"] for e, v in durations.items()],
            ],
        )
    )
    days = schedule_days(land)
    out.append(
        Figure(
            "schedule",
            "Assessment-schedule density",
            "How many outcome schedules sample each day after the anchor event (infusion, first dose…).",
            schedule_figure("schedule", days),
            [
                ["time after the anchor", "outcome schedules"],
                *[[fmt_day(d), n] for d, n in sorted(days.items())],
            ],
        )
    )
    edges = sorted(cotargeting.edges(data=True), key=lambda e: (-e[2].get("weight", 0), e[0], e[1]))
    out.append(
        Figure(
            "cotargeting",
            "Antigen co-targeting network",
            "Antigens targeted by the same trial; node size: trials targeting the antigen; edge width (and "
            "label, on the strongest links): trials targeting both. Antigens never targeted together with "
            "another are left out.",
            network_figure("cotargeting", cotargeting),
            [
                ["antigen", "antigen", "trials", "products"],
                *[
                    [
                        cotargeting.nodes[u]["label"],
                        cotargeting.nodes[v]["label"],
                        d.get("trials", 0),
                        d.get("products", 0),
                    ]
                    for u, v, d in edges
                ],
            ],
        )
    )
    return out


def _median(values: list[float]) -> float:
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


# --------------------------------------------------------------------------- HTML

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;margin:0;color:#1d2733;
background:#f6f7f9;line-height:1.45}
header{background:#1d3557;color:#fff;padding:1.2rem 2rem}header h1{margin:0 0 .3rem;font-size:1.5rem}
header p{margin:0;opacity:.85}main{max-width:1100px;margin:0 auto;padding:1rem 2rem 3rem}
nav ol{columns:2;padding-left:1.2rem}.stats{display:flex;gap:1rem;flex-wrap:wrap;margin:1rem 0}
.stat{background:#fff;border-radius:6px;padding:.6rem 1rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}
.stat b{display:block;font-size:1.4rem}section{background:#fff;border-radius:6px;margin:1.2rem 0;
padding:1rem 1.4rem;box-shadow:0 1px 2px rgba(0,0,0,.08)}h2{font-size:1.15rem;margin:.2rem 0 .6rem}
figure{margin:0}figure svg{max-width:100%;height:auto}figcaption{color:#4a5664;font-size:.9rem}
table{border-collapse:collapse;font-size:.85rem;margin-top:.5rem;width:100%}
th,td{border-bottom:1px solid #e3e6ea;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f4}details{margin-top:.5rem}summary{cursor:pointer;color:#1d3557}
td.num,th.num{text-align:right}footer{color:#6b7785;font-size:.8rem;text-align:center;padding:1rem}
"""


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def trial_link(trial: str, facts: dict[str, Any]) -> str:
    """The trial's id, linked to its ClinicalTrials.gov page when it has an NCT number."""
    tid = facts.get("tid") or facts.get("nct") or trial.rsplit("/", 1)[-1]
    nct = facts.get("nct") or (tid if is_nct_id(tid) else None)
    if nct:
        return f'<a href="{esc(CTGOV_STUDY + nct)}">{esc(tid)}</a>'
    return esc(tid)


def table_html(rows: list[list[Any]], caption: str = "") -> str:
    header, *body = rows
    numeric = [all(isinstance(r[i], int | float) for r in body) and bool(body) for i in range(len(header))]
    head = "".join(f"<th{' class=num' if numeric[i] else ''}>{esc(h)}</th>" for i, h in enumerate(header))
    lines = [
        "<tr>"
        + "".join(f"<td{' class=num' if numeric[i] else ''}>{esc(v)}</td>" for i, v in enumerate(r))
        + "</tr>"
        for r in body
    ]
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(lines)}</tbody></table>"


def trials_table(land: Landscape) -> str:
    order = sorted(land.trials, key=lambda t: (str(land.trials[t].get("tid", t)), t))
    head = ["trial", "title", "phase", "antigens", "strategy", "diseases", "cells", "outcomes"]
    outcome_counts = Counter(
        r["trial"] for r in {(r["trial"], r["outcome"]): r for r in land.outcomes}.values()
    )
    rows = []
    for t in order:
        facts = land.trials[t]
        cells = [
            trial_link(t, facts),
            esc(facts.get("title", "")),
            esc(", ".join(land.facet("phase", t))),
            esc(", ".join(land.facet("antigen", t))),
            esc(", ".join(land.facet("strategy", t))),
            esc(", ".join(land.facet("disease", t))),
            esc(", ".join(land.facet("cell_source", t))),
            str(outcome_counts.get(t, 0)),
        ]
        rows.append(
            "<tr>"
            + "".join(f"<td{' class=num' if i == 7 else ''}>{c}</td>" for i, c in enumerate(cells))
            + "</tr>"
        )
    header = "".join(f"<th{' class=num' if i == 7 else ''}>{esc(h)}</th>" for i, h in enumerate(head))
    return f'<table id="trials-table"><thead><tr>{header}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def page(title: str, land: Landscape, figs: list[Figure]) -> str:
    endpoints = {r["endpoint"] for r in land.outcomes}
    stats = [
        ("trials", len(land.trials)),
        ("CAR-T products", land.products),
        ("target antigens", len(count_trials(land, "antigen"))),
        ("outcomes", len({r["outcome"] for r in land.outcomes})),
        ("endpoint classes", len(endpoints)),
    ]
    nav = "".join(f'<li><a href="#{f.key}">{esc(f.title)}</a></li>' for f in figs)
    nav += '<li><a href="#trials">Trials</a></li>'
    sections = []
    for f in figs:
        sections.append(
            f'<section id="{f.key}"><h2 id="{f.key}-title">{esc(f.title)}</h2>'
            f'<figure class="chart" data-figure="{f.key}">{f.svg}'
            f"<figcaption>{esc(f.caption)}</figcaption></figure>"
            f"<details><summary>Numbers</summary>{table_html(f.table)}</details></section>"
        )
    stat_html = "".join(f'<div class="stat"><b>{n}</b>{esc(name)}</div>' for name, n in stats)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{esc(title)}</h1><p>CAR-T cell-therapy trials in the graph: antigens, constructs, "
        "endpoints and follow-up. Figures are inline SVG; the page loads nothing from the network.</p>"
        "</header>\n"
        f'<main>\n<div class="stats">{stat_html}</div>\n<nav><ol>{nav}</ol></nav>\n'
        + "\n".join(sections)
        + f'\n<section id="trials"><h2>Trials</h2>{trials_table(land)}</section>\n</main>\n'
        "<footer>Written by cartkg report. "
        "Trial ids with an NCT number link to ClinicalTrials.gov.</footer>\n"
        "</body>\n</html>\n"
    )


def build_report(store: ox.Store, title: str = DEFAULT_TITLE) -> tuple[str, Landscape]:
    """The report page for a graph, and the data it shows."""
    from kg.export import to_networkx

    land = gather(store)
    cotargeting = to_networkx(store, "antigen-cotargeting")
    return page(title, land, figures(land, cotargeting)), land


def write_report(store: ox.Store, out: Path, title: str = DEFAULT_TITLE) -> str:
    """Write the report to ``out``; returns a one-line summary."""
    text, land = build_report(store, title)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return f"{len(land.trials)} trials, {len(FIGURE_KEYS)} figures"


FIGURE_KEYS = (
    "antigens",
    "strategies",
    "costim",
    "cells",
    "endpoints",
    "followup",
    "schedule",
    "cotargeting",
)


def iter_svgs(text: str) -> Iterable[str]:
    """The inline SVG elements of a report page (for tests and checks)."""
    return re.findall(r"<svg\b.*?</svg>", text, flags=re.S)


__all__ = ["DEFAULT_TITLE", "FIGURE_KEYS", "build_report", "gather", "write_report"]
