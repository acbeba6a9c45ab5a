"""kg.text: normalization of registry text with an exact offset map back to the original."""

import re

from hypothesis import given
from hypothesis import strategies as st

from kg.text import normalize, undo_escapes


def test_text_repairs_mojibake_and_maps_back():
    original = "anti-CD19 scFv TCRÎ¶:4-1BB,administered"
    norm = normalize(original)
    assert norm.text == "anti-CD19 scFv TCRζ:4-1BB,administered"
    start = norm.text.index("TCRζ")
    assert norm.original_slice(start, start + 4) == "TCRÎ¶"
    zeta = norm.text.index("ζ")
    assert norm.original_slice(zeta, zeta + 1) == "Î¶"


def test_text_undoes_markdown_escapes_with_offsets():
    original = r"CD19 \& CD22, total dose of 5x10\^6/kg-5x10\^7/kg, 3\~12 cases"
    norm = normalize(original)
    assert norm.text == "CD19 & CD22, total dose of 5x10^6/kg-5x10^7/kg, 3~12 cases"
    amp = norm.text.index("&")
    assert norm.original_slice(amp, amp + 1) == r"\&"
    m = re.search(r"5x10\^6/kg", norm.text)
    assert m is not None
    assert norm.original_slice(m.start(), m.end()) == r"5x10\^6/kg"


def test_text_maps_fullwidth_punctuation_one_to_one():
    original = "Acute Lymphocytic Leukemia， B-Cell（IL2 ）"
    norm = normalize(original)
    assert norm.text == "Acute Lymphocytic Leukemia, B-Cell(IL2 )"
    assert len(norm.text) == len(original)
    i = norm.text.index(",")
    assert norm.original_slice(i, i + 1) == "，"


def test_text_leaves_plain_ascii_untouched():
    original = "CD19 CAR T Cells in Patients With Resistant ALL"
    norm = normalize(original)
    assert norm.text == original
    assert norm.to_original(5, 8) == (5, 8)


def test_text_undo_escapes_keeps_unescaped_backslashes():
    assert undo_escapes(r"a \& b \q") == r"a & b \q"


@given(st.text(max_size=200))
def test_text_offset_map_is_monotone_and_within_original(s):
    norm = normalize(s)
    n = len(norm.text)
    assert len(norm.starts) == len(norm.ends) == n + 1
    for i in range(n):
        start, end = norm.to_original(i, i + 1)
        assert 0 <= start <= end <= len(s)
    for i in range(n - 1):
        assert norm.starts[i] <= norm.starts[i + 1]
    full = norm.to_original(0, n) if n else (0, 0)
    assert 0 <= full[0] <= full[1] <= len(s)


@given(st.text(alphabet=st.characters(codec="ascii"), max_size=200))
def test_text_ascii_without_escapes_is_identity(s):
    s = s.replace("\\", "/")
    assert normalize(s).text == s
