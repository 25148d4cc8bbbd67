"""The preview's verdicts come from the engine run dry: no database, the MemorySink as the store."""
from sync.engine import run
from sync.fakes import ListLog, PagedSource, generated_contact
from sync.memory import MemorySink
from sync.plan import ConsentRule, Plan
from sync.sink import EXCLUDED, IMPORTED, SKIPPED, UNCHANGED, UPDATED

from services.previews import (DryRunSink, Tally, count_query, preview_query, preview_records,
                               run_query, totals_key, with_exclusions)

ORG = "00DDn00000Org1AAA"
CONSENT = ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",),
                      opted_out_values=("Withdrawn",), opt_out_flags=("HasOptedOutOfEmail",))


def plan(**kw):
    return Plan(**{"org_id": ORG, "object_name": "Contact", "consent": CONSENT, "default_region": "GB", **kw})


def contact(n, **fields):
    return {**generated_contact(n), **fields}


def by_id(rows):
    return {r.record_id: r for r in rows}


def test_verdicts_for_email_phone_consent_and_duplicates():
    records = [
        contact(1, Phone="020 7946 0018 ext. 42", MailingCountry="United Kingdom"),
        contact(2, Email="Jane Doe <jane@example.org>"),
        contact(3, Email="P00001@Example.org"),          # same person as 1 by email key
        contact(4, Consent_Status__c=None),
        contact(5, Phone="12345", Email=None),
    ]
    rows = by_id(preview_records(plan(), records, MemorySink().lookup))
    one, two, three, four, five = (rows[r["Id"]] for r in records)

    assert one.outcome == IMPORTED and one.verdict == "Will be imported"
    assert (one.phone_raw, one.phone_e164, one.phone_ext) == ("020 7946 0018 ext. 42", "+442079460018", "42")
    assert one.email == "p00001@example.org" and one.email_reason is None

    assert two.email is None and two.email_reason  # the validator's reason, never repaired
    assert "invalid email" in two.problems

    # the same person as 1: merged into 1's participant (linked), never "skipped"
    assert three.duplicate_in_set == one.record_id and three.outcome == UNCHANGED
    assert three.verdict == f"Unchanged: duplicate within the set (same email as {one.record_id})"

    assert four.consent_missing and four.consent == "unknown"
    assert not one.consent_missing and one.consent == "opted_in"

    assert five.phone_e164 is None and five.phone_reason
    assert five.outcome == SKIPPED and "No valid email or phone number." in five.reason


def test_already_imported_and_existing_participants_come_from_the_store_and_nothing_is_written():
    store = MemorySink()
    run(plan(), PagedSource([contact(1), contact(2)]), store, ListLog())
    before = (len(store.participants), len(store.links), store.commits)

    records = [contact(1, FirstName="Changed"), contact(2),
               contact(9, Email="p00002@example.org")]  # a new record of a known person
    rows = by_id(preview_records(plan(), records, store.lookup))

    assert rows[records[0]["Id"]].already_imported
    assert rows[records[0]["Id"]].verdict == ("Will be updated: already imported; changed in "
                                              "Salesforce since the last run")
    assert rows[records[1]["Id"]].verdict == ("Unchanged: already imported; not changed in "
                                              "Salesforce since the last run")
    nine = rows[records[2]["Id"]]
    assert not nine.already_imported and nine.duplicate_existing == "email"
    assert nine.outcome == UPDATED and nine.verdict == "Will be updated: matched an existing participant by email"
    assert (len(store.participants), len(store.links), store.commits) == before


def test_excluded_rows_keep_their_details_and_are_marked_removed():
    records = [contact(1), contact(2)]
    spec = with_exclusions(plan(), [records[1]["Id"][:15]])  # pasted as 15 characters
    rows = by_id(preview_records(spec, records, MemorySink().lookup))
    removed = rows[records[1]["Id"]]
    assert removed.excluded and removed.outcome == EXCLUDED and removed.verdict == "Removed in the preview"
    assert removed.email == "p00002@example.org"
    assert not rows[records[0]["Id"]].excluded


def test_dry_run_sees_what_earlier_pages_would_create():
    """Two pages: a duplicate on page 2 of a person created on page 1 is a duplicate, as in a real run."""
    records = [contact(1), contact(2, Email="P00001@example.org")]
    tally = Tally()
    sink = DryRunSink(MemorySink().lookup, tally.outcome)
    summary = run(plan(), PagedSource(records, page_size=1), sink, ListLog())
    assert summary.pages == 2
    assert tally.counts[IMPORTED] == 1 and tally.counts[UPDATED] == 1
    assert tally.counts["updated.matched_existing"] == 1

    real = MemorySink()
    run(plan(), PagedSource(records, page_size=1), real, ListLog())
    assert [o.outcome for o in real.outcomes] == [IMPORTED, UPDATED]


def test_queries_are_the_engines():
    spec = plan()
    where = "MailingCountry = 'United Kingdom'"
    fields = ", ".join(spec.select_fields())
    assert run_query(spec, where) == (f"SELECT {fields} FROM Contact WHERE MailingCountry = 'United Kingdom' "
                                      "ORDER BY SystemModstamp, Id")
    assert preview_query(spec, where) == (f"SELECT {fields} FROM Contact WHERE MailingCountry = 'United Kingdom' "
                                          "ORDER BY SystemModstamp, Id LIMIT 50")
    assert count_query(spec, where) == "SELECT COUNT() FROM Contact WHERE MailingCountry = 'United Kingdom'"


def test_totals_key_changes_with_the_plan_version_and_the_exclusions():
    base = plan()
    assert totals_key(base) == totals_key(plan())
    assert totals_key(base) != totals_key(plan(filters="LastName = 'X'"))
    assert totals_key(base) != totals_key(with_exclusions(base, [generated_contact(1)["Id"]]))


def test_the_preview_and_the_run_log_say_the_same_for_the_same_record():
    """The preview's verdict and what the run log shows for the same record (its outcome's label
    and the engine's reason) use one vocabulary (sync.verdicts): the same outcome, and the same
    words for the situation."""
    from sync import verdicts

    store = MemorySink()
    run(plan(), PagedSource([contact(1), contact(2)]), store, ListLog())
    records = [contact(1, FirstName="Changed"), contact(2),           # already imported
               contact(9, Email="p00002@example.org"),                # a known person's new record
               contact(10, Email="new@example.org"), contact(11, Email="NEW@example.org"),  # same person
               contact(12, Email=None, Phone=None),                   # nothing to reach them by
               contact(13)]                                           # removed in the preview
    spec = with_exclusions(plan(), [records[-1]["Id"]])
    rows = by_id(preview_records(spec, records, store.lookup))
    run(spec, PagedSource(records), store, ListLog())
    logged = {o.record_id: o for o in store.outcomes[-len(records):]}
    assert set(logged) == set(rows)
    run_log_code = {EXCLUDED: "excluded"}
    seen = set()
    for record_id, row in rows.items():
        o = logged[record_id]
        assert row.outcome == o.outcome and row.reason == o.reason
        code = run_log_code.get(o.outcome, o.outcome)
        label, _, situation = row.verdict.partition(": ")
        assert label == verdicts.PREVIEW_LABELS[o.outcome]
        assert (verdicts.PREVIEW_LABELS[o.outcome] == verdicts.OUTCOME_LABELS[code]
                or verdicts.PREVIEW_LABELS[o.outcome].endswith(verdicts.OUTCOME_LABELS[code].lower())
                or o.outcome == SKIPPED)
        if situation and o.reason:
            # the verdict's words for the situation are the run log reason's own words
            assert o.reason.lower().startswith(situation.split(" (")[0].lower()), (row.verdict, o.reason)
        seen.add(verdicts.preview_verdict(o.outcome, o.reason, already_imported=row.already_imported))
    assert f"Unchanged: duplicate within the set (same email as {records[3]['Id']})" in seen
    assert "Will be updated: matched an existing participant by email" in seen
    assert "Removed in the preview" in seen
    assert "Will be updated: already imported; changed in Salesforce since the last run" in seen
    assert "Unchanged: already imported; not changed in Salesforce since the last run" in seen
    # the run log has the same words as the reason of those rows (never an empty reason)
    assert logged[records[0]["Id"]].reason == "Already imported; changed in Salesforce since the last run"
    assert logged[records[1]["Id"]].reason == "Already imported; not changed in Salesforce since the last run"
    dup = logged[records[4]["Id"]]
    assert (verdicts.OUTCOME_LABELS[dup.outcome], dup.reason.split(";")[0]) == (
        "Unchanged", f"Duplicate within the set (same email as {records[3]['Id']})")


def test_reasons_are_read_back_by_the_vocabulary_that_wrote_them():
    from sync import verdicts

    assert verdicts.duplicate_in_set_of(verdicts.duplicate_in_set("003A", "phone")) == ("003A", "phone")
    assert verdicts.duplicate_in_set_of("Duplicate of 003B within this run (same email); merged") == ("003B", "email")
    assert verdicts.duplicate_in_set_of("Matched an existing participant by email") is None
    assert verdicts.matched_existing_by(verdicts.matched_existing("email") + "; Not invited: x") == "email"
    assert verdicts.EMAIL_TAKEN in verdicts.email_taken("a@b.example")
    assert verdicts.preview_verdict("skipped", "Opted out in Salesforce") == "Will be skipped: Opted out in Salesforce"
    assert verdicts.preview_verdict("imported", None) == "Will be imported"


def test_skipped_again_says_skipped_and_flags_are_not_repeated():
    from sync import verdicts

    again = verdicts.run_reason("skipped", "No valid email or phone number.", {"remembered": True})
    assert again == ("Skipped again: unchanged since an earlier run skipped it "
                     "(No valid email or phone number)")
    assert verdicts.skipped_again(again) == again
    assert verdicts.preview_verdict("skipped", again) == (
        "Will be skipped again: unchanged since an earlier run skipped it (No valid email or phone number)")
    assert verdicts.run_reason("updated", None) == ""
    detail = {"flags": [{"field": "email", "reason": "No valid email or phone number."},
                        {"field": "phone", "reason": "The phone number is too short."}]}
    # the reason says the first already; the second is shown once, without a field prefix
    assert verdicts.flag_notes("No valid email or phone number.", detail) == ["The phone number is too short."]
    assert verdicts.flag_notes(again, detail) == ["The phone number is too short."]


def _messy_store():
    """A store with imported people, and a skipped record remembered by the plan."""
    store = MemorySink()
    run(plan(), PagedSource([contact(1), contact(2), contact(3), contact(4, Email=None, Phone=None),
                             contact(5, Email="nobody", Phone="1"),
                             contact(40, Email="dup@example.org"), contact(41, Email="DUP@example.org")]),
        store, ListLog())
    # participants Terapage has from elsewhere (another plan's Leads): matched by email
    from sync.ids import to_18
    run(plan(object_name="Lead"), PagedSource([
        {**contact(70), "Id": to_18("00QDn0000000070"), "Email": "lead70@example.org"},
        {**contact(71), "Id": to_18("00QDn0000000071"), "Email": "lead71@example.org"}]), store, ListLog())
    assert [o.outcome for o in store.outcomes] == (
        [IMPORTED] * 3 + [SKIPPED] * 2 + [IMPORTED, UNCHANGED] + [IMPORTED] * 2)
    return store


def _messy_records():
    return [
        contact(1, FirstName="Changed"),                               # already imported, changed
        contact(2),                                                    # already imported, unchanged
        contact(3, Email="P00001@example.org"),                        # already imported, now a duplicate of 1
        contact(4, Email=None, Phone=None),                            # skipped before, skipped again
        contact(5, Email="nobody", Phone="1"),                         # skipped before, skipped again
        contact(20, Email="lead70@example.org"),                       # matches an existing participant
        contact(21, Email="Lead71@example.org", HasOptedOutOfEmail=True),  # opted out, matches one
        contact(30, Email="new30@example.org"),                        # new
        contact(31, Email="NEW30@example.org"),                        # duplicate within the set of 30
        contact(32, Email="new32@example.org"),
        contact(33, Email="x@", Phone=None),                           # skipped: no contact point
        contact(34, Email="new34@example.org", Consent_Status__c="Withdrawn"),  # opted out, new: skipped
        contact(35),                                                   # removed in the preview
        contact(40, Email="dup@example.org", FirstName="Dup"),         # "Dup One" and "Dup Two":
        contact(41, Email="dup@example.org", FirstName="Dup"),         # imported, one a duplicate
    ]


def test_preview_totals_are_the_runs_counters_and_add_up_to_the_matching_records():
    """Right before a run, the preview's totals (same categories, same counting) are exactly the
    counters the run then ends with, on a messy set: duplicates within the set, already imported
    records (one of them now a duplicate too, counted once), matches to existing participants by
    email, remembered skips, opted-out records, a removed row; and they add up to the records."""
    from sync import verdicts

    store = _messy_store()
    records = _messy_records()
    spec = with_exclusions(plan(), [contact(35)["Id"]])
    tally = Tally()
    sink = DryRunSink(store.lookup, tally.outcome)
    summary = run(spec, PagedSource(records, page_size=6), sink, ListLog())
    totals = tally.totals(summary.fetched, sink.departures)

    departures = []
    store.before_commit = lambda changes: departures.append(len(changes.departures))
    real = run(spec, PagedSource(records, page_size=6), store, ListLog())
    counters = {("excluded" if k == EXCLUDED else k): v for k, v in real.counts.items()}
    run_left = sum(departures)  # the run's "left" counter (services.sync_sink: departures)
    for key in verdicts.TOTAL_OUTCOMES + ("invited",):
        assert totals[key] == counters.get(key, 0), key
    assert totals["total"] == counters["fetched"] == len(records)
    assert totals["left"] == run_left == 0  # nobody here was linked and then left
    assert sum(totals[k] for k in verdicts.TOTAL_OUTCOMES) == totals["total"]
    # each outcome's situations add up to it: every record counted exactly once
    for key in verdicts.TOTAL_OUTCOMES:
        parts = sum(v for k, v in totals.items() if k.startswith(key + "."))
        assert parts == totals[key], key
    assert totals == {**totals, "imported": 2, "updated": 4, "unchanged": 3, "excluded": 1,
                      "skipped": 5, "failed": 0}
    # Dup Two: already imported and a duplicate within the set, counted once (as a duplicate)
    assert totals["unchanged.duplicate_in_set"] == 2 and totals["unchanged.already_imported"] == 1
    assert totals["updated.already_imported"] == 2 and totals["updated.matched_existing"] == 2
    assert totals["skipped.skipped_again"] == 2 and totals["skipped.other"] == 3
    assert set(verdicts.TOTAL_LABELS) >= set(verdicts.TOTAL_OUTCOMES) | {"total", "invited", "left"}
    assert all(verdicts.TOTAL_LABELS[k] == verdicts.OUTCOME_LABELS[k] for k in verdicts.TOTAL_OUTCOMES)


def test_an_opted_out_record_never_linked_does_not_leave_the_plan():
    """Matched to a participant Terapage has by email (another plan's Lead), opted out in
    Salesforce, never imported by this plan: the opt-out is written, but it did not "leave"."""
    store = _messy_store()
    departures = []
    store.before_commit = lambda changes: departures.extend(changes.departures)
    record = contact(21, Email="lead71@example.org", HasOptedOutOfEmail=True)
    summary = run(plan(), PagedSource([record]), store, ListLog())
    [o] = store.outcomes[-1:]
    assert o.outcome == UPDATED and departures == []
    assert o.reason == "Matched an existing participant by email; opted out in Salesforce"
    from sync.plan import Consent
    assert store.participants[o.participant].consent == Consent.OPTED_OUT
    assert summary.counts[UPDATED] == 1
    # once linked by this plan, a later opt-out is a departure as before
    linked = contact(21, Email="lead71@example.org", FirstName="Again", HasOptedOutOfEmail=True)
    store.participants[o.participant].consent = Consent.OPTED_IN
    run(plan(), PagedSource([linked]), store, ListLog())
    assert [d.kind for d in departures] == ["opted_out"]
    assert store.outcomes[-1].reason.startswith("Opted out in Salesforce; policy:")
