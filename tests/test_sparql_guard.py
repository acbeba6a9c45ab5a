"""kg.sparql_guard: query forms, SERVICE and FROM are found lexically, before any evaluation."""

import pytest

from kg.sparql_guard import UnsafeQuery, check_query


@pytest.mark.parametrize(
    "query",
    [
        "SELECT * { SERVICE <http://internal-host/> { ?s ?p ?o } }",
        "select * { ?a ?b ?c { select * { service silent <http://x/> { ?s ?p ?o } } } }",
        "PREFIX e: <http://e/> ASK { SERVICE e:x { ?s ?p ?o } }",
        "SELECT * {\n  SeRvIcE\n<http://x/>{?s ?p ?o}}",
    ],
)
def test_sparql_guard_refuses_service_anywhere(query):
    with pytest.raises(UnsafeQuery) as err:
        check_query(query)
    assert err.value.status == 403 and "SERVICE" in err.value.message


@pytest.mark.parametrize(
    "query",
    [
        'SELECT ("SERVICE" AS ?x) {} # SERVICE in a comment',
        "SELECT * { ?s <http://e/SERVICE> ?o }",
        "PREFIX e: <http://e/> SELECT * { ?s e:SERVICE ?o }",
        "SELECT * { ?s ?p ?o FILTER(?o < 3 && ?o > 1) }",
    ],
)
def test_sparql_guard_ignores_service_inside_strings_iris_and_names(query):
    assert check_query(query).form in ("SELECT", "ASK")


@pytest.mark.parametrize(
    "update",
    [
        "INSERT DATA { <a> <b> <c> }",
        "PREFIX e: <http://e/> DELETE WHERE { ?s ?p ?o }",
        "LOAD <http://example.org/x.ttl>",
        "CLEAR ALL",
        "DROP GRAPH <http://g>",
        "WITH <http://g> DELETE { ?s ?p ?o } WHERE { ?s ?p ?o }",
    ],
)
def test_sparql_guard_refuses_updates_with_403(update):
    with pytest.raises(UnsafeQuery) as err:
        check_query(update)
    assert err.value.status == 403


def test_sparql_guard_reports_form_and_dataset():
    check = check_query(
        "PREFIX g: <http://g/> CONSTRUCT { ?s ?p ?o } FROM g:one FROM NAMED <http://n> WHERE { ?s ?p ?o }"
    )
    assert check.form == "CONSTRUCT"
    assert check.from_graphs == ("http://g/one",)
    assert check.from_named_graphs == ("http://n",)


def test_sparql_guard_rejects_non_queries_with_400():
    with pytest.raises(UnsafeQuery) as err:
        check_query("hello world")
    assert err.value.status == 400
