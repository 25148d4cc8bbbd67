"""C18 (pure part): the changes of the one run that imports: 2 created, 1 updated, cursor once.

The mutual exclusion of the two jobs is the runner's (lock + run row); it is tested with
Redis and workers later.
"""
from sync.engine import run
from sync.fakes import ListLog
from sync.mapping import SourceRef, map_record
from sync.memory import MemorySink
from sync.plan import Plan
from tests.conftest import load_case

CASE = load_case("C18")


def test_c18_created_updated_cursor_written_once():
    plan = Plan(org_id="00DDn00000Org1AAA", object_name="Contact", default_region="US")
    sink = MemorySink()
    existing = CASE["input"]["existing_participant"]
    ana = {"Id": existing["source_id"], "FirstName": "Ana", "LastName": "Ruiz",
           "Email": existing["email"], "SystemModstamp": "2024-06-12T08:00:00.000+0000"}
    run(plan, [[ana]], sink, ListLog())
    writes_before = sink.cursor_writes
    changes = [dict(r, SystemModstamp="2024-06-12T08:59:0%d.000+0000" % i)
               for i, r in enumerate(CASE["input"]["new_changes_in_salesforce"])]
    summary = run(plan, [changes], sink, ListLog(), cursor=sink.cursor)
    assert summary.counts["imported"] == CASE["expected"]["participants_created"]
    assert summary.counts["updated"] == CASE["expected"]["participants_updated"]
    assert len(sink.participants) == 3
    assert sink.cursor_writes - writes_before == CASE["expected"]["cursor_writes"]
    assert sink.participant_for(SourceRef(plan.org_id, "Contact", existing["source_id"])) \
        .values["phone"] == "+12015550150"
    assert map_record(plan, changes[0]).record_id == existing["source_id"]
