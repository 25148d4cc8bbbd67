"""C13 (pure part): every page is followed; a broken page never ends "succeeded"."""
from datetime import datetime, timezone

import pytest

from sync.cursor import soql_literal
from sync.engine import run
from sync.errors import SourceBrokenPaging, SourceTransient
from sync.fakes import ListLog, PagedSource, generated_contacts
from sync.memory import MemorySink
from sync.plan import ConsentRule, Plan
from tests.conftest import load_case

CASE = load_case("C13")
PLAN = Plan(org_id="00DDn00000Org1AAA", object_name="Contact",
            consent=ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",)))
RECORDS = generated_contacts(CASE["input"]["generated_records"]["count"])
PAGE_1_NEWEST = datetime(2024, 5, 1, 0, 33, 19, tzinfo=timezone.utc)


def test_c13_generated_records_match_the_case():
    assert RECORDS[0]["Id"] == "003Dn0000000001IAA"
    assert RECORDS[1999]["SystemModstamp"] == "2024-05-01T00:33:19.000+0000"
    assert RECORDS[-1]["SystemModstamp"] == "2024-05-01T00:35:49.000+0000"


def test_c13_a_all_pages():
    expected = CASE["expected"]["variant_A"]
    sink = MemorySink()
    source = PagedSource(RECORDS)
    summary = run(PLAN, source, sink, ListLog())
    assert source.pages_served == 2
    assert summary.status == expected["status"]
    assert summary.fetched == expected["fetched"]
    assert len(sink.participants) == expected["participants"]
    assert soql_literal(summary.cursor) == soql_literal(sink.cursor) == expected["saved_cursor"]


@pytest.mark.parametrize("variant, error", [
    ("variant_B", SourceTransient("page 2 timed out after 3 attempts")),
    ("variant_C", SourceBrokenPaging("done is false but there is no nextRecordsUrl")),
])
def test_c13_broken_page_two(variant, error):
    expected = CASE["expected"][variant]
    sink = MemorySink()
    summary = run(PLAN, PagedSource(RECORDS, failures={2: error}), sink, ListLog())
    assert summary.status in expected["status_one_of"]
    assert summary.status != "succeeded" and summary.reason
    assert len(sink.participants) == 2000
    assert sink.cursor == summary.cursor == PAGE_1_NEWEST
    assert soql_literal(sink.cursor) <= expected["saved_cursor_not_after"]


def test_c13_b_next_run_completes_without_duplicates():
    sink = MemorySink()
    run(PLAN, PagedSource(RECORDS, failures={2: SourceTransient()}), sink, ListLog())
    rerun = run(PLAN, PagedSource(RECORDS, cursor=sink.cursor), sink, ListLog(),
                cursor=sink.cursor)
    assert rerun.status == "succeeded"
    assert len(sink.participants) == CASE["expected"]["variant_B"]["next_run"]["participants_total"]
    assert len({p.email_key for p in sink.participants.values()}) == 2150
    # the 5-minute look-back re-reads 301 committed records at no cost
    assert rerun.counts["unchanged"] == 301 and rerun.counts["imported"] == 150
