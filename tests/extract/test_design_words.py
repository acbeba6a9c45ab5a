"""patterns/design_words.json: the dose-level groups and broad disease classes are data, and used as such."""

from kg.extract.design import count_level_words, design_words
from kg.extract.mentions import NUMBER_WORDS
from kg.extract.vocab import load_vocabulary


def test_design_words_level_groups_are_disjoint_lowercase_and_count_levels():
    groups = design_words()["dose_level_groups"]
    words = [w for g in groups for w in g]
    assert len(words) == len(set(words)) and all(w == w.lower() for w in words)
    assert count_level_words("low, medium and high dose groups") == 3
    assert count_level_words("lower-dose and higher-dose cohorts") == 2
    assert count_level_words("dose escalation") == 0


def test_design_words_generic_diseases_are_vocabulary_concepts():
    vocab = load_vocabulary()
    concepts = {c for rule in vocab.by_label("DISEASE") for c in rule.concepts}
    concepts |= set(vocab.parents().values())
    generic = design_words()["generic_diseases"]
    assert generic == sorted(generic)
    assert set(generic) <= concepts


def test_design_words_number_words_come_from_the_shared_table():
    assert NUMBER_WORDS["twelve"] == 12 and NUMBER_WORDS["forty"] == 40 and NUMBER_WORDS["hundred"] == 100
