"""Safe RDF input: DOCTYPE/ENTITY RDF/XML and referenced JSON-LD contexts are refused before any parser
runs, no request is made (a loopback listener counts connections), and ordinary files still load."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pyoxigraph as ox
import pytest

from kg.errors import UsageError
from kg.query import open_store, run_query
from kg.rdfio import UnsafeRdf, check_rdf, load_rdf

RDFXML = """<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">
  <rdf:Description rdf:about="http://example.org/a"><ex:p>{value}</ex:p></rdf:Description>
</rdf:RDF>
"""
LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE rdf:RDF [
 <!ENTITY a "lol">
""" + "".join(f' <!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">\n' for i in range(9)) + """]>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns:ex="http://example.org/">
  <rdf:Description rdf:about="http://example.org/a"><ex:p>&j;</ex:p></rdf:Description>
</rdf:RDF>
"""


class Listener:
    """A TCP listener on 127.0.0.1 that accepts and records every connection."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def listener() -> Iterator[Listener]:
    lst = Listener()
    yield lst
    lst.close()


@pytest.fixture
def no_parser(monkeypatch):
    """Fail the test if any Oxigraph loader is reached (the file must be refused before parsing)."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the parser was called on a file that should have been refused")

    monkeypatch.setattr(ox.Store, "bulk_load", forbidden)
    monkeypatch.setattr(ox.Store, "load", forbidden)


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


# --------------------------------------------------------------------------- RDF/XML


def test_rdfio_plain_rdfxml_loads(tmp_path):
    store = load_rdf(_write(tmp_path, "a.rdf", RDFXML.format(value="x")))
    assert len(store) == 1


def test_rdfio_billion_laughs_refused_before_parsing(tmp_path, no_parser):
    path = _write(tmp_path, "laughs.rdf", LAUGHS)
    with pytest.raises(UnsafeRdf) as info:
        load_rdf(path)
    assert str(path) in str(info.value)
    assert "<!DOCTYPE" in str(info.value) and "remove the DOCTYPE" in str(info.value)


def test_rdfio_external_entity_makes_no_request(tmp_path, listener, no_parser):
    text = (
        f'<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY ext SYSTEM "{listener.url}/secret">]>\n'
        + RDFXML.split("\n", 1)[1].format(value="&ext;")
    )
    with pytest.raises(UnsafeRdf):
        load_rdf(_write(tmp_path, "xxe.owl", text))
    with pytest.raises(UnsafeRdf):
        load_rdf(_write(tmp_path, "xxe_file.rdf", text.replace(f"{listener.url}/secret", "file:///etc/passwd")))
    assert listener.connections == 0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-8-sig", "utf-32"])
def test_rdfio_doctype_refused_in_any_unicode_encoding(tmp_path, encoding, no_parser):
    # utf-16-le has no BOM: detected from the bytes of '<?'
    with pytest.raises(UnsafeRdf):
        load_rdf(_write(tmp_path, "laughs.rdf", LAUGHS, encoding))


def test_rdfio_doctype_after_comments_and_pis_is_found(tmp_path, no_parser):
    text = '<?xml version="1.0"?>\n<!-- <rdf:RDF> in a comment -->\n<?pi x?>\n' + LAUGHS.split("\n", 1)[1]
    with pytest.raises(UnsafeRdf):
        load_rdf(_write(tmp_path, "c.rdf", text))


def test_rdfio_doctype_text_inside_a_literal_is_not_refused(tmp_path):
    store = load_rdf(_write(tmp_path, "lit.rdf", RDFXML.format(value="&lt;!DOCTYPE html&gt; is markup")))
    [quad] = list(store)
    assert quad.object.value == "<!DOCTYPE html> is markup"


def test_rdfio_huge_internal_subset_is_not_read_whole(tmp_path, no_parser):
    path = tmp_path / "big.rdf"
    with path.open("w", encoding="utf-8") as out:
        out.write('<?xml version="1.0"?>\n<!DOCTYPE r [\n')
        for i in range(200_000):
            out.write(f'<!ENTITY e{i} "{i}">\n')
        out.write("]>\n<r/>\n")
    with pytest.raises(UnsafeRdf):
        check_rdf(path)


# --------------------------------------------------------------------------- JSON-LD

INLINE = {"@context": {"ex": "http://example.org/"}, "@id": "ex:a", "ex:p": "x"}


def test_rdfio_inline_context_loads(tmp_path):
    store = load_rdf(_write(tmp_path, "a.jsonld", json.dumps(INLINE)))
    assert len(store) == 1


@pytest.mark.parametrize(
    "doc",
    [
        {"@context": "{url}/ctx.jsonld", "@id": "http://example.org/a"},
        {"@context": ["{url}/ctx.jsonld", {"ex": "http://example.org/"}], "@id": "http://example.org/a"},
        {"@context": {"@import": "{url}/ctx.jsonld"}, "@id": "http://example.org/a"},
        {"@graph": [{"@context": "{url}/nested.jsonld", "@id": "http://example.org/a"}]},
        {"@context": {"ex": {"@id": "http://example.org/p", "@context": "{url}/scoped"}}, "ex": {}},
        [{"@context": "{url}/top-array"}],
    ],
    ids=["string", "list", "import", "nested", "scoped", "top-level-array"],
)
def test_rdfio_remote_context_refused_without_request(tmp_path, listener, no_parser, doc):
    text = json.dumps(doc).replace("{url}", listener.url)
    path = _write(tmp_path, "remote.jsonld", text)
    with pytest.raises(UnsafeRdf) as info:
        load_rdf(path)
    assert listener.url in str(info.value) and str(path) in str(info.value)
    assert listener.connections == 0


@pytest.mark.parametrize("reference", ["file:///etc/passwd", "context.jsonld", "../ctx.jsonld"])
def test_rdfio_file_and_relative_contexts_refused(tmp_path, no_parser, reference):
    (tmp_path / "context.jsonld").write_text(json.dumps({"@context": {"ex": "http://example.org/"}}))
    path = _write(tmp_path, "local.jsonld", json.dumps({"@context": reference, "@id": "http://example.org/a"}))
    with pytest.raises(UnsafeRdf, match="inline the context"):
        load_rdf(path)


def test_rdfio_invalid_json_is_a_usage_error(tmp_path, no_parser):
    with pytest.raises(UsageError, match="invalid JSON"):
        load_rdf(_write(tmp_path, "bad.jsonld", '{"@context": {'))


def test_rdfio_exported_jsonld_round_trips(tmp_path):
    """What `cartkg export -f jsonld` writes (the packaged context, inlined) is accepted."""
    from kg.export import load_context

    doc = {"@context": load_context(), "@id": "cartkg:x", "@type": "cartkg:Trial"}
    store = load_rdf(_write(tmp_path, "export.jsonld", json.dumps(doc)))
    assert len(store) == 1


# --------------------------------------------------------------------------- wiring and other formats


def test_rdfio_open_store_refuses_unsafe_files(tmp_path, listener):
    path = _write(tmp_path, "r.jsonld", json.dumps({"@context": f"{listener.url}/c", "@id": "urn:x:a"}))
    with pytest.raises(UnsafeRdf):
        open_store(path)
    assert listener.connections == 0


def test_rdfio_open_store_still_answers_queries_on_turtle(tmp_path):
    path = _write(tmp_path, "g.ttl", '<http://example.org/a> <http://example.org/p> "x" .\n')
    result = run_query(open_store(path), "SELECT ?o WHERE { ?s ?p ?o } ORDER BY ?o")
    assert [row[0].value for row in result.rows] == ["x"]


def test_rdfio_unknown_suffix_and_syntax_error(tmp_path):
    with pytest.raises(UsageError, match="unknown RDF file type"):
        load_rdf(_write(tmp_path, "g.csv", "a,b\n"))
    with pytest.raises(UsageError, match="not valid"):
        load_rdf(_write(tmp_path, "g.ttl", "<a> <b> .\n"))
