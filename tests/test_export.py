"""Exports: the projection, each view on the seed trials, and each format re-read by its consumer's parser."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import networkx as nx
import pyoxigraph as ox
import pytest
from rdflib import Dataset, Graph, Literal
from rdflib.compare import isomorphic

from kg.build import VOCABULARY_GRAPH, build
from kg.errors import UsageError
from kg.export import FORMATS, export, generate_context, load_context, project_rdf, to_networkx, to_rdflib
from kg.ingest import read_paths
from kg.iri import graph_iri, trial_iri
from kg.query import open_store
from kg.records import TrialExtraction, TrialRecord
from kg.views import VIEWS

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "tests" / "fixtures" / "gold_seeds.json"
C = "https://w3id.org/cartkg/"
XSD = "http://www.w3.org/2001/XMLSchema#"
CD19, CD22 = C + "AntigenCD19", C + "AntigenCD22"
SEEDS = [
    "000_4cde64b56812378f",
    "001_03a7aaf402897e1e",
    "002_8aeda82023bc8876",
    "003_f3a6c040197edfad",
    "004_2baf81115b3b9652",
]


def write_seed_store(path: Path, extra: tuple[str, ...] = ()) -> ox.Store:
    """``cartkg build`` of the gold seed extractions with their records (data/examples/seeds) into the
    build folder ``path``, opened read-only.  ``extra``: bundled records added with an empty extraction."""
    records = {
        r.trial_id: r
        for r in read_paths([str(ROOT / "data" / "examples" / "seeds"), *extra])
        if isinstance(r, TrialRecord)
    }
    extractions = [TrialExtraction.from_json(d) for d in json.loads(GOLD.read_text(encoding="utf-8"))]
    gold_ids = {e.trial_id for e in extractions}
    extractions += [
        TrialExtraction(trial_id=t, source=r.source) for t, r in sorted(records.items()) if t not in gold_ids
    ]
    report = build([(e, records.get(e.trial_id)) for e in extractions], path, fresh=True)
    assert report["trials_in_store"] == len(extractions), report
    return open_store(path)


@pytest.fixture(scope="module")
def seed_store(tmp_path_factory):
    return write_seed_store(tmp_path_factory.mktemp("seeds") / "build")


def store_dataset(store: ox.Store) -> Dataset:
    """The store as rdflib sees it (literals normalized the way rdflib's parsers normalize them)."""
    ds = Dataset()
    for q in store.quads_for_pattern(None, None, None, None):
        s, p, o = (to_rdflib(t) for t in (q.subject, q.predicate, q.object))
        if isinstance(o, Literal):
            o = Literal(str(o), lang=o.language, datatype=o.datatype)
        ds.graph(to_rdflib(q.graph_name)).add((s, p, o))
    return ds


def parse_dataset(path: Path, fmt: str) -> Dataset:
    """rdflib 7.6's own Dataset.parse trips its deprecation warnings; only those are silenced here."""
    ds = Dataset()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", r"(Dataset|ConjunctiveGraph)\b.* is deprecated", DeprecationWarning)
        ds.parse(path, format=fmt)
    return ds


def graphs_by_name(ds: Dataset) -> dict[str, Graph]:
    out = {}
    for g in ds.graphs():
        if len(g):
            out[str(g.identifier)] = g
    return out


def union_graph(ds: Dataset) -> Graph:
    g = Graph()
    for s, p, o, _ in ds.quads((None, None, None, None)):
        g.add((s, p, o))
    return g


# --------------------------------------------------------------------------- the projection


def quad(s, p, o):
    return ox.Quad(ox.NamedNode(s), ox.NamedNode(p), o, ox.DefaultGraph())


def lit(value, datatype="string"):
    return ox.Literal(value, datatype=ox.NamedNode(XSD + datatype))


RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
EX = "https://example.org/"


def mixed_quads():
    """Three trials whose literals disagree in type and number under the same property names."""
    return [
        quad(EX + "t1", RDF_TYPE, ox.NamedNode(C + "ClinicalTrial")),
        quad(EX + "t1", C + "trialId", lit("T1")),
        quad(EX + "t1", C + "enrollment", lit("24", "integer")),
        quad(EX + "t1", C + "startDate", lit("2020-01-02", "date")),
        quad(EX + "t1", C + "condition", lit("ALL")),
        quad(EX + "t1", C + "condition", lit("NHL")),
        quad(EX + "t1", C + "score", lit("2", "integer")),
        quad(EX + "t1", C + "flag", lit("true", "boolean")),
        quad(EX + "t1", C + "hasProduct", ox.NamedNode(EX + "p1")),
        quad(EX + "t2", RDF_TYPE, ox.NamedNode(C + "ClinicalTrial")),
        quad(EX + "t2", C + "trialId", lit("T2")),
        quad(EX + "t2", C + "score", lit("2.5", "decimal")),
        quad(EX + "t2", C + "condition", lit("MM")),
        quad(EX + "t2", C + "flag", lit("maybe")),
        quad(EX + "p1", RDF_TYPE, ox.NamedNode(C + "CarTProduct")),
        quad(EX + "p1", C + "usesVector", ox.NamedNode("http://example.org/unit/Lenti")),
    ]


def test_export_projection_folds_literals_with_one_type_per_attribute():
    g = to_networkx(mixed_quads())
    t1, t2 = g.nodes[EX + "t1"], g.nodes[EX + "t2"]
    assert (t1["label"], t1["type"]) == ("T1", "ClinicalTrial")
    assert t1["enrollment"] == 24 and "enrollment" not in t2  # missing values are dropped, not None
    assert t1["startDate"] == "2020-01-02"
    assert t1["condition"] == "ALL; NHL" and t2["condition"] == "MM"  # several values joined
    assert t1["score"] == 2.0 and t2["score"] == 2.5 and all(isinstance(d["score"], float) for d in (t1, t2))
    assert t1["flag"] == "true" and t2["flag"] == "maybe"  # bool mixed with text becomes text everywhere
    assert g.nodes[EX + "p1"]["usesVector"] == "http://example.org/unit/Lenti"  # an IRI naming nothing
    assert [(u, v, d["label"]) for u, v, d in g.edges(data=True)] == [(EX + "t1", EX + "p1", "hasProduct")]


def test_export_projection_keeps_lists_for_json_formats():
    g = to_networkx(mixed_quads(), lists="keep")
    assert g.nodes[EX + "t1"]["condition"] == ["ALL", "NHL"]
    assert g.nodes[EX + "t2"]["condition"] == ["MM"]  # list-valued somewhere: a list everywhere


def test_export_projection_leaves_out_the_ontology_and_unused_vocabulary(seed_store):
    g = project_rdf(seed_store)
    kinds = {d["type"] for _, d in g.nodes(data=True)}
    assert "Class" not in kinds and "ObjectProperty" not in kinds
    assert C + "Antigen" not in g and C + "AntigenBCMA" not in g  # a class; an antigen no seed targets
    assert CD19 in g and g.nodes[CD19]["label"] == "CD19"
    assert str(trial_iri(SEEDS[0])) in g


@pytest.mark.parametrize("fmt", ["graphml", "gexf"])
def test_export_xml_formats_survive_control_characters_in_text(tmp_path, fmt):
    quads = [*mixed_quads(), quad(EX + "t2", C + "title", lit("Phase\x0b1 \x01study <&>"))]
    out = tmp_path / f"x.{fmt}"
    export(quads, fmt, out)
    back = nx.read_graphml(out, force_multigraph=True) if fmt == "graphml" else nx.read_gexf(out)
    assert back.nodes[EX + "t2"]["title"] == "Phase\ufffd1 \ufffdstudy <&>"


def test_export_graphml_round_trip_keeps_types(tmp_path):
    out = tmp_path / "x.graphml"
    export(mixed_quads(), "graphml", out)
    back = nx.read_graphml(out, force_multigraph=True)
    assert back.nodes[EX + "t1"]["enrollment"] == 24
    assert back.nodes[EX + "t2"]["score"] == 2.5
    assert back.nodes[EX + "t1"]["condition"] == "ALL; NHL"


# --------------------------------------------------------------------------- views on the seeds


def test_export_view_antigen_cotargeting_counts_trials_and_products(seed_store):
    g = to_networkx(seed_store, "antigen-cotargeting")
    assert sorted(g.nodes) == [CD19, CD22]
    assert (g.nodes[CD19]["trials"], g.nodes[CD22]["trials"]) == (5, 4)
    [(u, v, d)] = list(g.edges(data=True))
    assert (u, v) == (CD19, CD22)
    assert d["weight"] == 4 and d["trials"] == 4
    assert d["products"] == 2  # multi-target 000 and bispecific 001 have one product with both antigens
    assert d["trial_ids"] == "; ".join(t for t in SEEDS if t != "002_8aeda82023bc8876")


def test_export_view_design_folds_constructs_into_products(seed_store):
    g = to_networkx(seed_store, "design")
    by_type: dict[str, int] = {}
    for _, d in g.nodes(data=True):
        by_type[d["type"]] = by_type.get(d["type"], 0) + 1
    assert by_type == {
        "ClinicalTrial": 5,
        "CarTProduct": 7,
        "Antigen": 2,
        "CostimulatoryDomain": 1,
        "SignallingDomain": 1,
        "Disease": 2,
    }
    labels = sorted(d["label"] for _, _, d in g.edges(data=True))
    assert labels.count("hasProduct") == 7 and labels.count("studiesDisease") == 5
    assert labels.count("targetsAntigen") == 9 and labels.count("hasCostimulatoryDomain") == 2
    assert labels.count("hasSignallingDomain") == 1
    seq = str(trial_iri("003_f3a6c040197edfad"))
    assert g.nodes[seq]["strategy"] == "sequential" and g.nodes[seq]["diseases"] == "B-NHL"
    allo = [d for n, d in g.nodes(data=True) if d.get("cellSource") == "allogeneic"]
    assert len(allo) == 2 + 1  # trial 004's two products and the trial itself


def test_export_view_trial_similarity_weights_are_jaccard_of_shared_features(seed_store):
    g = to_networkx(seed_store, "trial-similarity")
    a, b = str(trial_iri("003_f3a6c040197edfad")), str(trial_iri("004_2baf81115b3b9652"))
    d = g.get_edge_data(a, b)["similarTo"]
    # 003: CD19 CD22 B-NHL + 7 endpoints; 004: CD19 CD22 B-ALL + 9 endpoints; shared CD19 CD22 AE ORR DOR
    assert d["shared"] == 5 and d["weight"] == round(5 / 17, 4)
    assert d["shared_antigens"] == "CD19; CD22" and d["shared_endpoints"] == "AE; DOR; ORR"
    assert g.number_of_nodes() == 5 and g.number_of_edges() == 10  # top 5 keeps every pair of 5 trials
    top1 = to_networkx(seed_store, "trial-similarity", top_k=1)
    assert 0 < top1.number_of_edges() <= 5
    for t in top1.nodes:  # every trial keeps (at least) its strongest link
        best = max(d["weight"] for u, v, d in g.edges(data=True) if t in (u, v))
        assert best in [d["weight"] for u, v, d in top1.edges(data=True) if t in (u, v)]


def test_export_view_endpoints_counts_outcomes_by_role(seed_store):
    g = to_networkx(seed_store, "endpoints")
    t0 = str(trial_iri(SEEDS[0]))
    cyto = g.get_edge_data(t0, C + "EndpointCYTOKINE")["usesEndpoint"]
    assert (cyto["weight"], cyto["secondary"], cyto["primary"]) == (5, 5, 0)
    dlt = g.get_edge_data(t0, C + "EndpointDLT")["usesEndpoint"]
    assert dlt["primary"] == 1 and dlt["max_follow_up_days"] == 28.0
    crit = [
        (g.nodes[u]["label"], g.nodes[v]["label"], d["trials"])
        for u, v, d in g.edges(data=True)
        if d["label"] == "assessedWith"
    ]
    gold = json.loads(GOLD.read_text(encoding="utf-8"))
    expected = {
        (
            o["endpoint"],
            c,
            sum(
                any(x["endpoint"] == o["endpoint"] and c in x["criteria"] for x in t["outcomes"])
                for t in gold
            ),
        )
        for t in gold
        for o in t["outcomes"]
        for c in o["criteria"]
    }
    assert sorted(crit) == sorted(expected)
    assert ("AE", "CTCAE v5.0", 2) in crit
    assert {d["type"] for _, d in g.nodes(data=True)} == {"ClinicalTrial", "EndpointClass", "Criteria"}


@pytest.mark.parametrize("view", sorted(set(VIEWS) - {"full"}))
def test_export_view_reads_only_what_it_needs_and_gets_the_same_graph(seed_store, view):
    from kg.export import finalize
    from kg.views import apply_view

    whole = finalize(apply_view(project_rdf(seed_store), view))
    whole.graph["view"] = view
    focused = to_networkx(seed_store, view)
    assert list(focused.nodes(data=True)) == list(whole.nodes(data=True))
    assert list(focused.edges(keys=True, data=True)) == list(whole.edges(keys=True, data=True))
    assert focused.graph == {**whole.graph, "view": view}


def test_export_unknown_view_format_and_rdf_view_are_usage_errors(seed_store, tmp_path):
    with pytest.raises(UsageError, match="unknown view"):
        export(seed_store, "graphml", tmp_path / "x.graphml", view="nope")
    with pytest.raises(UsageError, match="unknown export format"):
        export(seed_store, "xlsx", tmp_path / "x.xlsx")
    with pytest.raises(UsageError, match="applies to graph formats"):
        export(seed_store, "ttl", tmp_path / "x.ttl", view="design")
    with pytest.raises(UsageError, match="top-k"):
        export(seed_store, "graphml", tmp_path / "x.graphml", view="trial-similarity", top_k=0)


# --------------------------------------------------------------------------- each format re-read


@pytest.mark.parametrize("view", sorted(VIEWS))
def test_export_graphml_is_read_back_by_networkx(seed_store, tmp_path, view):
    expected = to_networkx(seed_store, view)
    out = tmp_path / f"{view}.graphml"
    export(seed_store, "graphml", out, view=view)
    back = nx.read_graphml(out, force_multigraph=True)
    assert sorted(back.nodes) == sorted(expected.nodes)
    assert back.number_of_edges() == expected.number_of_edges()
    for n, d in expected.nodes(data=True):
        assert back.nodes[n] == d
    assert sorted((u, v, d["label"]) for u, v, d in back.edges(data=True)) == sorted(
        (u, v, d["label"]) for u, v, d in expected.edges(data=True)
    )


@pytest.mark.parametrize("view", ["full", "antigen-cotargeting"])
def test_export_gexf_is_read_back_by_networkx(seed_store, tmp_path, view):
    expected = to_networkx(seed_store, view)
    out = tmp_path / f"{view}.gexf"
    export(seed_store, "gexf", out, view=view)
    assert b"lastmodifieddate" not in out.read_bytes()
    back = nx.read_gexf(out)
    assert sorted(back.nodes) == sorted(expected.nodes)
    assert back.number_of_edges() == expected.number_of_edges()
    for n, d in expected.nodes(data=True):
        got = back.nodes[n]
        assert got["label"] == d["label"] and got["type"] == d["type"]
    if view == "antigen-cotargeting":
        [(_, _, d)] = back.edges(data=True)
        assert d["weight"] == 4.0 and d["products"] == 2


def test_export_cyjs_has_the_cytoscape_elements_shape(seed_store, tmp_path):
    out = tmp_path / "design.cyjs"
    export(seed_store, "cyjs", out, view="design")
    doc = json.loads(out.read_text(encoding="utf-8"))
    nodes, edges = doc["elements"]["nodes"], doc["elements"]["edges"]
    ids = [n["data"]["id"] for n in nodes]
    assert len(ids) == len(set(ids)) == 18
    assert all(n["data"]["name"] == n["data"]["label"] for n in nodes)
    edge_ids = [e["data"]["id"] for e in edges]
    assert len(edge_ids) == len(set(edge_ids)) == 24
    assert all(e["data"]["source"] in ids and e["data"]["target"] in ids for e in edges)
    assert {e["data"]["interaction"] for e in edges} >= {"hasProduct", "targetsAntigen"}
    trial = next(n["data"] for n in nodes if n["data"]["id"] == str(trial_iri(SEEDS[0])))
    assert trial["antigens"] == ["CD19", "CD22"]  # lists stay JSON arrays


@pytest.mark.filterwarnings(
    "ignore:'\\w+' deprecated - use:DeprecationWarning"
)  # pydot's parser, old pyparsing API
def test_export_dot_is_read_back_by_pydot(seed_store, tmp_path):
    import pydot

    expected = to_networkx(seed_store, "design")
    out = tmp_path / "design.dot"
    export(seed_store, "dot", out, view="design")
    [graph] = pydot.graph_from_dot_data(out.read_text(encoding="utf-8"))
    names = sorted(n.get_name().strip('"') for n in graph.get_nodes() if n.get_name() not in ("node", "edge"))
    assert names == sorted(expected.nodes)
    edges = graph.get_edges()
    assert len(edges) == expected.number_of_edges()
    assert all(
        e.get_source().strip('"') in expected and e.get_destination().strip('"') in expected for e in edges
    )
    cd19 = graph.get_node(f'"{CD19}"')[0]
    assert cd19.get("label") == '"CD19"'


def read_csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.reader(fh))


HEADER_FIELD = re.compile(
    r"^(?:(?:[A-Za-z_]\w*)?:(?:ID|LABEL|START_ID|END_ID|TYPE)"
    r"|[A-Za-z_]\w*:(?:string|int|long|float|double|boolean|date|datetime|localdatetime|duration)(?:\[\])?)$"
)


def test_export_neo4j_csvs_follow_the_import_header_grammar(seed_store, tmp_path):
    expected = to_networkx(seed_store, "full", lists="keep")
    out = tmp_path / "neo4j"
    export(seed_store, "neo4j", out)
    script = (out / "import.sh").read_text(encoding="utf-8")
    delimiter = re.search(r"--array-delimiter='(.)'", script).group(1)
    ids: set[str] = set()
    labels: dict[str, str] = {}
    for path in sorted(out.glob("nodes_*.csv")):
        assert f"--nodes={path.name}" in script
        rows = read_csv(path)
        header = rows[0]
        assert header[:2] == ["iri:ID", ":LABEL"]
        assert all(HEADER_FIELD.match(h) for h in header), header
        for row in rows[1:]:
            ids.add(row[0])
            record = dict(zip(header, row, strict=True))
            labels[row[0]] = record[":LABEL"]
            for h, cell in record.items():
                if h.endswith("[]") and cell:
                    name = h.split(":")[0]
                    assert cell.split(delimiter) == [str(x) for x in expected.nodes[row[0]][name]]
    assert ids == set(expected.nodes)
    assert labels[CD19].split(delimiter) == ["Antigen", "NamedIndividual"]
    n_rels = 0
    for path in sorted(out.glob("relationships_*.csv")):
        assert f"--relationships={path.name}" in script
        rows = read_csv(path)
        assert rows[0][:3] == [":START_ID", ":END_ID", ":TYPE"]
        assert all(HEADER_FIELD.match(h) for h in rows[0]), rows[0]
        for row in rows[1:]:
            assert row[0] in ids and row[1] in ids
            n_rels += 1
    assert n_rels == expected.number_of_edges()


@pytest.mark.parametrize("fmt,rdflib_format", [("ttl", "turtle"), ("nt", "nt")])
def test_export_rdf_triples_round_trip_isomorphic_to_the_store(seed_store, tmp_path, fmt, rdflib_format):
    out = tmp_path / f"g.{fmt}"
    export(seed_store, fmt, out)
    back = Graph().parse(out, format=rdflib_format)
    assert isomorphic(back, union_graph(store_dataset(seed_store)))


@pytest.mark.parametrize("fmt,rdflib_format", [("nq", "nquads"), ("trig", "trig"), ("jsonld", "json-ld")])
def test_export_rdf_datasets_round_trip_graph_by_graph(seed_store, tmp_path, fmt, rdflib_format):
    out = tmp_path / f"g.{fmt}"
    export(seed_store, fmt, out)
    back = parse_dataset(out, rdflib_format)
    got, want = graphs_by_name(back), graphs_by_name(store_dataset(seed_store))
    assert sorted(got) == sorted(want) == sorted([str(graph_iri(t)) for t in SEEDS] + [str(VOCABULARY_GRAPH)])
    for name in want:
        assert isomorphic(got[name], want[name]), name


def test_export_jsonld_inlines_the_packaged_context(seed_store, tmp_path):
    out = tmp_path / "g.jsonld"
    export(seed_store, "jsonld", out)
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["@context"] == load_context()
    text = out.read_text(encoding="utf-8")
    assert '"targetsAntigen": "cartkg:AntigenCD19"' in text  # the context's terms are used (compacted)


def test_export_context_file_is_in_step_with_the_ontology():
    packaged = json.loads((ROOT / "kg" / "context.jsonld").read_text(encoding="utf-8"))
    assert packaged == generate_context(), "regenerate: python -m kg.export > kg/context.jsonld"


# --------------------------------------------------------------------------- determinism and the CLI


DETERMINISM_SCRIPT = """
import sys, pyoxigraph as ox
from pathlib import Path
from kg.export import FORMATS, export
from kg.query import open_store
store = open_store(Path(sys.argv[1]))
out = Path(sys.argv[2])
for name, spec in FORMATS.items():
    export(store, name, out / ("neo4j" if name == "neo4j" else "full" + spec.suffix))
    if spec.kind == "graph":
        export(store, name, out / ("neo4j-sim" if name == "neo4j" else "sim" + spec.suffix),
               view="trial-similarity")
"""


def tree_bytes(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_export_every_format_is_byte_identical_across_runs_and_hash_seeds(tmp_path):
    write_seed_store(tmp_path / "build")  # a build folder of its own, opened read-only by each run
    runs = []
    for seed in ("0", "12345"):
        out = tmp_path / f"run{seed}"
        out.mkdir()
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [sys.executable, "-c", DETERMINISM_SCRIPT, str(tmp_path / "build"), str(out)],
            check=True,
            env=env,
            cwd=ROOT,
        )
        runs.append(tree_bytes(out))
    assert len(runs[0]) >= len(FORMATS) + 4
    assert runs[0] == runs[1]


def test_export_cli_writes_each_format_from_an_rdf_file(seed_store, tmp_path, capsys):
    from kg.cli import main

    trig = tmp_path / "in.trig"
    export(seed_store, "trig", trig)
    assert (
        main(
            [
                "export",
                "--graph",
                str(trig),
                "--format",
                "graphml",
                "--view",
                "antigen-cotargeting",
                "-o",
                str(tmp_path / "co.graphml"),
            ]
        )
        == 0
    )
    assert "2 nodes, 1 edges" in capsys.readouterr().err
    back = nx.read_graphml(tmp_path / "co.graphml", force_multigraph=True)
    [(_, _, d)] = back.edges(data=True)
    assert d["weight"] == 4
    assert main(["export", "--graph", str(trig), "--format", "nq", "-o", str(tmp_path / "g.nq")]) == 0
    assert (
        main(
            [
                "export",
                "--graph",
                str(trig),
                "--format",
                "ttl",
                "--view",
                "design",
                "-o",
                str(tmp_path / "g.ttl"),
            ]
        )
        == 2
    )
    assert "applies to graph formats" in capsys.readouterr().err


def test_export_cli_lists_formats_and_views(capsys):
    from kg.cli import main

    assert main(["export", "--list"]) == 0
    text = capsys.readouterr().out
    for name in list(FORMATS) + list(VIEWS):
        assert name in text
