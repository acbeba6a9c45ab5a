"""kg.records: the stage contract round-trips through JSON and names its fields."""

import json
from pathlib import Path

from kg.records import Intervention, Outcome, Source, TrialExtraction, TrialRecord, is_nct_id

GOLD = Path(__file__).parent / "fixtures" / "gold_seeds.json"


def test_records_extraction_json_round_trip_keeps_gold_contract():
    for gold in json.loads(GOLD.read_text(encoding="utf-8")):
        out = TrialExtraction.from_json(gold).to_json()
        for key, value in gold.items():
            if key == "outcomes":
                for g, o in zip(value, out["outcomes"], strict=True):
                    assert {k: o[k] for k in g} == g
            else:
                assert out[key] == value, key
        assert TrialExtraction.from_json(out) == TrialExtraction.from_json(gold)


def test_records_text_fields_name_every_free_text_field():
    rec = TrialRecord(
        trial_id="NCT01234567",
        source=Source(path="x.json", format="v2json"),
        brief_title="T",
        conditions=("ALL", "NHL"),
        interventions=(Intervention(type="BIOLOGICAL", name="CAR-T", description="d"),),
        outcomes=(Outcome(role="primary", measure="ORR", description=None, time_frame="1 year"),),
    )
    fields = dict(rec.text_fields())
    assert fields == {
        "brief_title": "T",
        "conditions[0]": "ALL",
        "conditions[1]": "NHL",
        "interventions[0].name": "CAR-T",
        "interventions[0].description": "d",
        "outcomes[0].measure": "ORR",
        "outcomes[0].time_frame": "1 year",
    }
    assert rec.field_text("outcomes[0].time_frame") == "1 year"
    assert rec.nct_id == "NCT01234567"


def test_records_nct_id_shape():
    assert is_nct_id("NCT00000001")
    assert not is_nct_id("NCT0000001")
    assert not is_nct_id("000_4cde64b56812378f")
    assert not is_nct_id(None)
