"""C07 (pure part): IDs differing only in case are two people; IDs are stored exactly."""
from sync.engine import run
from sync.fakes import ListLog
from sync.ids import to_18
from sync.mapping import SourceRef
from sync.memory import MemorySink
from sync.plan import Plan
from tests.conftest import load_case

CASE = load_case("C07")


def test_c07_checksums():
    for id15, id18 in CASE["input"]["checksum_reference"].items():
        assert to_18(id15) == id18


def test_c07_two_people_and_an_update():
    plan = Plan(org_id="00DDn00000Org1AAA", object_name="Contact")
    sink = MemorySink()
    run(plan, [CASE["input"]["records_from_api"]], sink, ListLog())
    assert len(sink.participants) == CASE["expected"]["participants_after_first_sync"]
    assert sorted(ref.record_id for ref in sink.links) == sorted(
        CASE["expected"]["stored_source_ids"])
    run(plan, [CASE["input"]["second_sync"]], sink, ListLog())
    assert len(sink.participants) == 2
    mei = sink.participant_for(SourceRef(plan.org_id, "Contact", "003Dn00000QxRtAIAV"))
    assert mei.values["first_name"] == "Mei-Lin"
