"""kg.query: named queries, safe parameter binding and running on a store."""

from pathlib import Path

import pyoxigraph as ox
import pytest

from kg.errors import UsageError
from kg.query import bind_params, find_query, insert_into_where, parse_query_file, rdf_term, run_query
from kg.results import SelectResult, to_csv, to_markdown, to_table

EX = "http://example.org/"

QUERY = """#+ summary: Trials by antigen
#+ cq: Which trials target an antigen?
#+ tags: antigen
#+ params: antigen=literal:CD19 trial=iri
#+ returns: trial, antigen
SELECT ?trial ?antigen WHERE {
  ?trial <http://example.org/antigen> ?antigen .
} ORDER BY ?trial
"""


@pytest.fixture
def query_file(tmp_path: Path) -> Path:
    path = tmp_path / "cq01_trials_by_antigen.rq"
    path.write_text(QUERY, encoding="utf-8")
    return path


@pytest.fixture
def store() -> ox.Store:
    s = ox.Store()
    for i, antigen in enumerate(["CD19", "CD22", 'CD"19', "CD19"]):
        graph = ox.NamedNode(f"{EX}g{i}")
        s.add(ox.Quad(ox.NamedNode(f"{EX}t{i}"), ox.NamedNode(f"{EX}antigen"), ox.Literal(antigen), graph))
    return s


def test_query_header_is_parsed(query_file):
    q = parse_query_file(query_file)
    assert q.summary == "Trials by antigen" and q.cq.startswith("Which")
    assert [(p.name, p.type, p.default) for p in q.params] == [
        ("antigen", "literal", "CD19"),
        ("trial", "iri", None),
    ]
    assert q.returns == ("trial", "antigen")
    assert find_query("cq01", query_file.parent).name == "cq01_trials_by_antigen"
    with pytest.raises(UsageError, match="no query named"):
        find_query("cq99", query_file.parent)


def test_query_params_bind_through_values_and_default(query_file, store):
    q = parse_query_file(query_file)
    default = run_query(store, bind_params(q, {}))
    assert isinstance(default, SelectResult)
    assert [r[0].value for r in default.rows] == [f"{EX}t0", f"{EX}t3"]
    cd22 = run_query(store, bind_params(q, {"antigen": "CD22"}))
    assert [r[0].value for r in cd22.rows] == [f"{EX}t1"]
    only = run_query(store, bind_params(q, {"trial": f"{EX}t3"}))
    assert [r[0].value for r in only.rows] == [f"{EX}t3"]


def test_query_params_cannot_inject(query_file, store):
    q = parse_query_file(query_file)
    injected = run_query(store, bind_params(q, {"antigen": 'CD"19'}))
    assert [r[0].value for r in injected.rows] == [f"{EX}t2"]  # the quote is data, not syntax
    attack = 'x" } } SERVICE <http://127.0.0.1:9/> { ?a ?b ?c } #'
    assert run_query(store, bind_params(q, {"antigen": attack})).rows == ()
    with pytest.raises(UsageError, match="not an absolute IRI"):
        bind_params(q, {"trial": "http://x> } SERVICE <http://y"})
    with pytest.raises(UsageError, match="no parameter"):
        bind_params(q, {"disease": "ALL"})


def test_query_values_go_into_the_where_block():
    assert insert_into_where("CONSTRUCT { ?s ?p ?o } WHERE { ?s ?p ?o }", "X").startswith(
        "CONSTRUCT { ?s ?p ?o } WHERE { X "
    )
    assert rdf_term("a\nb", "literal") == '"a\\nb"'
    assert rdf_term("42", "integer").startswith('"42"^^')


def test_query_run_refuses_service_and_updates(store):
    with pytest.raises(UsageError, match="SERVICE"):
        run_query(store, "SELECT * { SERVICE <http://127.0.0.1:9/> { ?s ?p ?o } }")
    with pytest.raises(UsageError, match="update"):
        run_query(store, "INSERT DATA { <a> <b> <c> }")


def test_query_output_formats(query_file, store):
    result = run_query(store, bind_params(parse_query_file(query_file), {}))
    assert isinstance(result, SelectResult)
    assert to_csv(result).splitlines() == ["trial,antigen", f"{EX}t0,CD19", f"{EX}t3,CD19"]
    assert to_table(result).strip().endswith("(2 rows)")
    assert to_markdown(result).splitlines()[0] == "| trial | antigen |"
