"""Ontology documentation: HTML generated from ``ontology/cartkg.ttl`` with pyLODE (offline)."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import types
from pathlib import Path
from typing import Any

from kg.errors import UsageError
from kg.resources import ontology_path


def write_ontology_docs(destination: Path) -> Path:
    """Write the ontology's HTML documentation to ``destination`` and return it.

    pyLODE renders the local ontology file only; it is given no IRI to dereference, so nothing is fetched.
    """
    OntPub = _import_ontpub()
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    html = OntPub(ontology=str(ontology_path())).make_html()
    destination.write_text(html, encoding="utf-8")
    return destination


def _import_ontpub() -> Any:
    """Import pyLODE's OntPub.

    pyLODE 3.4.1's wheel (the only release on PyPI here) reads its version from a ``pyproject.toml``
    that the wheel does not ship, so ``import pylode`` fails; when that module is missing we provide
    ``pylode.version`` from the installed distribution's metadata instead.
    """
    if "pylode.version" not in sys.modules:
        try:
            import pylode.version  # noqa: F401
        except FileNotFoundError:
            shim = types.ModuleType("pylode.version")
            shim.__version__ = importlib.metadata.version("pylode")  # type: ignore[attr-defined]
            sys.modules["pylode.version"] = shim
        except ImportError as exc:
            raise UsageError("pyLODE is not installed: pip install pylode") from exc
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from pylode import OntPub
    finally:  # pyLODE configures the root logger (INFO to stderr) at import; keep the CLI's output clean
        root.handlers[:] = handlers
        root.setLevel(level)
    return OntPub
