"""C08 (pure part): a null parent in a mapped path gives an empty company, never junk."""
from sync.engine import run
from sync.fakes import ListLog
from sync.mapping import map_record
from sync.memory import MemorySink
from sync.plan import Mapping, Plan
from tests.conftest import load_case

CASE = load_case("C08")
PLAN = Plan(org_id="00DDn00000Org1AAA", object_name="Contact",
            mapping=Mapping(company=(CASE["input"]["mapping"]["Company"],)))


def test_c08_company_from_parent_or_none():
    for record in CASE["input"]["records"]:
        mapped = map_record(PLAN, record)
        expected = CASE["expected"]["company"][record["Id"]]
        assert mapped.company == expected
        assert mapped.company not in CASE["expected"]["company_never_rendered_as"]


def test_c08_sync_creates_both_participants():
    sink = MemorySink()
    summary = run(PLAN, [CASE["input"]["records"]], sink, ListLog())
    assert summary.status == CASE["expected"]["sync_status"]
    assert len(sink.participants) == CASE["expected"]["participants_created"]
    companies = [p.values.get("company") for p in sink.participants.values()]
    assert companies.count("Northwind Research Co") == 1 and companies.count(None) == 1
    lena = sink.participant_for(map_record(PLAN, CASE["input"]["records"][0]).ref)
    assert "company" not in lena.values
