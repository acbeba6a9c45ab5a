"""The one place that finds packaged data: ontology, shapes, queries, patterns, examples.

Data folders live at the repository top (``ontology/``, ``shapes/``, ``queries/``)
and are shipped inside the wheel as ``kg/_data/…`` (see ``pyproject.toml``);
this module looks in the installed copy first, then in the checkout.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
_INSTALLED = PACKAGE_DIR / "_data"
_CHECKOUT = PACKAGE_DIR.parent


def data_dir(name: str) -> Path:
    """Return the folder ``name`` (``ontology``, ``shapes``, ``queries``, ``data/examples``)."""
    for base in (_INSTALLED, _CHECKOUT):
        candidate = base / name
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"packaged data folder {name!r} not found under {_INSTALLED} or {_CHECKOUT}")


def package_file(*parts: str) -> Path:
    """A data file that lives inside the package itself (e.g. ``extract/patterns/antigens.jsonl``)."""
    path = PACKAGE_DIR.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"package data file {path} is missing")
    return path


def ontology_path() -> Path:
    return data_dir("ontology") / "cartkg.ttl"


def shapes_path() -> Path:
    return data_dir("shapes") / "cartkg.shapes.ttl"


def queries_dir() -> Path:
    return data_dir("queries")


def examples_dir() -> Path:
    return data_dir("data/examples")
