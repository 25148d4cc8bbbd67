"""C16 (pure part): the daily API limit ends the run partial; the next run resumes."""
from sync.cursor import soql_literal
from sync.engine import run
from sync.errors import SourceLimitReached
from sync.fakes import ListLog, PagedSource, generated_contacts
from sync.memory import MemorySink
from sync.plan import Plan
from tests.conftest import load_case

CASE = load_case("C16")
PLAN = Plan(org_id="00DDn00000Org1AAA", object_name="Contact")
RECORDS = generated_contacts(CASE["input"]["generated_records"]["count"])


def test_c16_limit_then_resume():
    run_1, run_2 = CASE["expected"]["run_1"], CASE["expected"]["run_2"]
    sink = MemorySink()
    source = PagedSource(RECORDS, failures={2: SourceLimitReached("TotalRequests Limit exceeded.")})
    first = run(PLAN, source, sink, ListLog())
    assert first.status == run_1["status"]
    assert first.reason == run_1["reason_shown"]
    assert len(sink.participants) == run_1["participants_committed"]
    assert source.requests == 2  # nothing asked after the refused page
    assert soql_literal(sink.cursor) <= run_1["saved_cursor_not_after"]
    assert first.needs_reconnect is run_1["connection_marked_needs_reauth"]

    second = run(PLAN, PagedSource(RECORDS, cursor=sink.cursor), sink, ListLog(),
                 cursor=sink.cursor)
    assert second.status == run_2["status"]
    assert len(sink.participants) == run_2["participants_total"]
    assert len({p.email_key for p in sink.participants.values()}) == run_2["participants_total"]
