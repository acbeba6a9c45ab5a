"""The ontology file: declarations, labels, metadata, alignment IRIs, and the generated namespace."""

from __future__ import annotations

import json

import pytest
from rdflib import OWL, RDF, RDFS, Graph, Literal, URIRef
from rdflib.namespace import DCTERMS

from kg import gen_namespace
from kg.build import build_trial_graph, build_vocabulary_graph
from kg.namespace import CARTKG
from kg.records import TrialExtraction
from kg.resources import PACKAGE_DIR, ontology_path
from kg.vocab import load_ontology

NS = str(CARTKG._NS)
VANN = "http://purl.org/vocab/vann/"
DECLARED_TYPES = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty, OWL.NamedIndividual)


@pytest.fixture(scope="module")
def onto() -> Graph:
    return Graph().parse(ontology_path(), format="turtle")


@pytest.fixture(scope="module")
def seeds_graph() -> Graph:
    gold = json.loads((PACKAGE_DIR.parent / "tests/fixtures/gold_seeds.json").read_text(encoding="utf-8"))
    g = Graph()
    for obj in gold:
        g += build_trial_graph(TrialExtraction.from_json(obj))
    return g


def declared(onto: Graph) -> set[URIRef]:
    return {s for t in DECLARED_TYPES for s in onto.subjects(RDF.type, t) if isinstance(s, URIRef)}


def test_ontology_namespace_module_is_generated_from_ontology(onto: Graph) -> None:
    expected = gen_namespace.render_module(onto)
    assert gen_namespace.TARGET.read_text(encoding="utf-8") == expected, "run python -m kg.gen_namespace"


def test_ontology_namespace_is_closed() -> None:
    assert CARTKG.ClinicalTrial == URIRef(NS + "ClinicalTrial")
    with pytest.raises(AttributeError):
        CARTKG.ClinicalTrail  # noqa: B018 - a typo must fail


def test_ontology_every_term_has_english_label_and_comment(onto: Graph) -> None:
    missing = []
    for term in sorted(t for t in declared(onto) if str(t).startswith(NS)):
        for prop in (RDFS.label, RDFS.comment):
            values = [v for v in onto.objects(term, prop) if isinstance(v, Literal) and str(v).strip()]
            if not values:
                missing.append(f"{term} {prop}")
    assert not missing


def test_ontology_terms_used_in_built_graphs_are_declared(onto: Graph, seeds_graph: Graph) -> None:
    vocabulary = build_vocabulary_graph()
    used = set()
    for _, p, o in seeds_graph:
        used.add(p)
        if p == RDF.type:
            used.add(o)
        elif isinstance(o, URIRef) and str(o).startswith(NS) and "/id/" not in str(o):
            used.add(o)
    ours = {t for t in used if str(t).startswith(NS) and "/id/" not in str(t)}
    assert len(ours) > 40
    undeclared = sorted(ours - declared(onto))
    assert not undeclared
    for term in ours:
        assert (term, RDFS.label, None) in vocabulary and (term, RDFS.comment, None) in vocabulary


def test_ontology_metadata(onto: Graph) -> None:
    ont = next(onto.subjects(RDF.type, OWL.Ontology))
    assert onto.value(ont, OWL.versionIRI) is not None
    assert onto.value(ont, DCTERMS.license) is not None
    assert onto.value(ont, DCTERMS.creator) is not None
    assert str(onto.value(ont, URIRef(VANN + "preferredNamespacePrefix"))) == "cartkg"
    assert str(onto.value(ont, URIRef(VANN + "preferredNamespaceUri"))) == NS
    assert not list(onto.objects(ont, OWL.imports)), "validation must never need to follow owl:imports"


def test_ontology_hgnc_links_use_bioregistry_and_match_the_curie(onto: Graph) -> None:
    linked = 0
    for term, curie in onto.subject_objects(CARTKG.hgncId):
        number = str(curie).split(":", 1)[1]
        assert (
            term,
            URIRef("http://www.w3.org/2004/02/skos/core#exactMatch"),
            URIRef(f"https://bioregistry.io/hgnc:{number}"),
        ) in onto
        linked += 1
    assert linked >= 14  # the verified antigens and domains


def test_ontology_verified_identifiers_only(onto: Graph) -> None:
    """Spot-check alignments against the verified identifier table."""
    skos = "http://www.w3.org/2004/02/skos/core#"
    assert (
        CARTKG.AntigenCD19,
        URIRef(skos + "exactMatch"),
        URIRef("https://bioregistry.io/hgnc:1633"),
    ) in onto
    assert (
        CARTKG.DiseaseBALL,
        URIRef(skos + "exactMatch"),
        URIRef("http://purl.obolibrary.org/obo/MONDO_0004947"),
    ) in onto
    assert (
        CARTKG.Phase1Phase2,
        URIRef(skos + "exactMatch"),
        URIRef("http://purl.obolibrary.org/obo/CTO_0000046"),
    ) in onto
    assert (
        CARTKG.ClinicalTrial,
        RDFS.subClassOf,
        URIRef("http://purl.obolibrary.org/obo/CTO_0000220"),
    ) in onto


def test_ontology_notations_are_unique_per_vocabulary(onto: Graph) -> None:
    seen: dict[tuple[str, str], URIRef] = {}
    skos_notation = URIRef("http://www.w3.org/2004/02/skos/core#notation")
    for term, notation in onto.subject_objects(skos_notation):
        for cls in onto.objects(term, RDF.type):
            if cls == OWL.NamedIndividual:
                continue
            key = (str(cls), str(notation))
            assert key not in seen, f"{notation} is the notation of {seen.get(key)} and {term}"
            seen[key] = term


def test_ontology_loaded_once_is_the_file() -> None:
    assert len(load_ontology()) == len(Graph().parse(ontology_path(), format="turtle"))
