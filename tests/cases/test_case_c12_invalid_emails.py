"""C12 (pure part): plausible-looking but invalid emails are flagged, never repaired or keyed."""
from sync.validate import INVALID_EMAIL, normalize_email
from tests.conftest import load_case

CASE = load_case("C12")
RECORDS = {r["Id"]: r for r in CASE["input"]["records"]}


def test_c12_invalid_emails_are_flagged_with_a_reason():
    for record_id in CASE["expected"]["invalid_email_flag"]:
        raw = RECORDS[record_id]["Email"]
        result = normalize_email(raw)
        assert result.email is None and result.key is None
        assert result.flag.code == INVALID_EMAIL
        assert result.flag.raw == raw
        assert len(result.flag.reason) > 10


def test_c12_valid_email():
    for record_id, email in CASE["expected"]["valid"].items():
        result = normalize_email(RECORDS[record_id]["Email"])
        assert result.email == email and result.key == email and result.flag is None


def test_c12_never_stored_or_keyed():
    never = set(CASE["expected"]["never_stored_or_used_as_dedup_key"])
    for record in CASE["input"]["records"]:
        result = normalize_email(record["Email"])
        assert result.email not in never and result.key not in never


def test_c12_two_syncs_keep_the_participant_count():
    from sync.engine import run
    from sync.fakes import ListLog
    from sync.memory import MemorySink
    from sync.plan import Plan

    plan = Plan(org_id="00DDn00000Org1AAA", object_name="Contact")
    sink = MemorySink()
    first = run(plan, [CASE["input"]["records"]], sink, ListLog())
    count = len(sink.participants)
    second = run(plan, [CASE["input"]["records"]], sink, ListLog())
    assert count == len(sink.participants) == 1
    assert first.counts["skipped"] == 5 and first.counts["imported"] == 1
    assert second.counts["skipped"] == 5 and second.counts["unchanged"] == 1
    never = set(CASE["expected"]["never_stored_or_used_as_dedup_key"])
    stored = {v for p in sink.participants.values() for v in p.values.values()}
    assert not stored & never
    assert all("invalid_email" in [f.code for f in o.flags]
               for o in sink.outcomes if o.outcome == "skipped")
