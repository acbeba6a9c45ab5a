"""Controlled vocabularies: contract values (``"CD19"``, ``"4-1BB"``, ``"ORR"``) ↔ ontology individuals.

The ontology is the single source: every individual carries ``skos:notation`` with the value the
extraction contract uses, and its ``rdf:type`` names the vocabulary.  A value the ontology does not
declare gets a minted IRI (``…/id/vocab/<Class>/<value>``) so nothing is dropped; the build report lists
such values, and SHACL ``sh:in`` flags them where the vocabulary is closed.
"""

from __future__ import annotations

from functools import lru_cache

from rdflib import RDF, SKOS, Graph, Literal, URIRef

from kg.iri import mint, parse_minted
from kg.namespace import CARTKG
from kg.resources import ontology_path

NAMESPACE = str(CARTKG._NS)


@lru_cache(maxsize=1)
def load_ontology() -> Graph:
    """The ontology as an rdflib graph (parsed once per process; never follows owl:imports)."""
    return Graph().parse(ontology_path(), format="turtle")


@lru_cache(maxsize=1)
def _notations() -> dict[tuple[str, str], URIRef]:
    table: dict[tuple[str, str], URIRef] = {}
    onto = load_ontology()
    for s, notation in sorted(onto.subject_objects(SKOS.notation)):
        for cls in sorted(onto.objects(s, RDF.type)):
            if isinstance(s, URIRef) and str(cls).startswith(NAMESPACE):
                local = str(cls)[len(NAMESPACE) :]
                table[(local, str(notation))] = s
                table.setdefault((local, str(notation).casefold()), s)
    return table


def lookup(vocabulary: URIRef, value: str) -> URIRef | None:
    """The ontology individual of class ``vocabulary`` whose notation is ``value`` (exact, then casefold)."""
    local = str(vocabulary)[len(NAMESPACE) :]
    table = _notations()
    return table.get((local, value)) or table.get((local, value.casefold()))


def concept(vocabulary: URIRef, value: str) -> URIRef:
    """The IRI for ``value`` in ``vocabulary``: the ontology individual, or a minted one."""
    found = lookup(vocabulary, value)
    if found is not None:
        return found
    return mint("vocab", str(vocabulary)[len(NAMESPACE) :], value)


def parse_vocab_iri(iri: str) -> tuple[URIRef, str] | None:
    """``(class IRI, value)`` for a minted vocabulary IRI, else None."""
    parsed = parse_minted(iri)
    if parsed is None or parsed[0] != "vocab" or len(parsed[1]) != 2:
        return None
    return URIRef(NAMESPACE + parsed[1][0]), parsed[1][1]


def notation_of(iri: URIRef) -> str | None:
    """The contract value of a vocabulary IRI (ontology individual or minted)."""
    value = load_ontology().value(iri, SKOS.notation)
    if isinstance(value, Literal):
        return str(value)
    parsed = parse_vocab_iri(str(iri))
    return parsed[1] if parsed else None
