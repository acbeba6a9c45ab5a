"""Same input, same output byte for byte: two fresh builds of the same records (one and two extraction
processes, different output folders) write identical graph.ttl files."""

from __future__ import annotations

import pytest

from kg.cli import main
from kg.resources import examples_dir


@pytest.mark.slow
def test_robust_two_builds_of_the_same_input_are_byte_identical(tmp_path, capsys):
    seeds = str(examples_dir() / "seeds")
    first, second = tmp_path / "a", tmp_path / "elsewhere" / "b"
    assert main(["build", seeds, "--out", str(first), "--fresh"]) == 0
    assert main(["build", seeds, "--out", str(second), "--fresh", "--jobs", "2"]) == 0
    a, b = (first / "graph.ttl").read_bytes(), (second / "graph.ttl").read_bytes()
    assert len(a) > 1000
    assert a == b


@pytest.mark.slow
def test_robust_rebuild_into_the_same_folder_is_byte_identical(tmp_path, capsys):
    seeds = str(examples_dir() / "seeds")
    out = tmp_path / "build"
    assert main(["build", seeds, "--out", str(out), "--fresh"]) == 0
    before = (out / "graph.ttl").read_bytes()
    assert main(["build", seeds, "--out", str(out)]) == 0
    assert (out / "graph.ttl").read_bytes() == before
