from datetime import datetime, timezone

import pytest

from sync import validate
from sync.engine import run
from sync.errors import (SinkConflict, SourceAuthFailed, SourceQueryError, SourceTransient)
from sync.fakes import ListLog, PagedSource, generated_contacts
from sync.mapping import SourceRef
from sync.memory import MemorySink
from sync.plan import Action, Consent, ConsentRule, LeavingPolicy, Mapping, Plan
from sync.sink import ParticipantValues

ORG = "00DDn00000Org1AAA"
CONSENT = ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",),
                      opted_out_values=("Withdrawn",), opt_out_flags=("HasOptedOutOfEmail",))


def plan(**kw):
    return Plan(org_id=ORG, object_name="Contact", consent=CONSENT, **kw)


def contact(n, **fields):
    from sync.fakes import generated_contact
    return {**generated_contact(n), **fields}


def sync(p, records, sink, **kw):
    return run(p, PagedSource(records, page_size=kw.pop("page_size", 2000), **kw), sink,
               ListLog(), cursor=kw.get("cursor"))


def test_unchanged_records_cost_no_validation_and_no_writes(monkeypatch):
    sink = MemorySink()
    records = generated_contacts(10)
    sync(plan(), records, sink)
    calls = []
    real = validate.check_record
    monkeypatch.setattr(validate, "check_record", lambda *a: calls.append(a) or real(*a))
    changed = [dict(r) for r in records]
    changed[3]["FirstName"] = "Renamed"
    summary = sync(plan(), changed, sink)
    assert len(calls) == 1
    assert summary.counts["unchanged"] == 9 and summary.counts["updated"] == 1
    assert sink.participant_for(SourceRef(ORG, "Contact", records[3]["Id"])).values[
        "first_name"] == "Renamed"
    assert len(sink.participants) == 10
    # phase 2 lookup only for the page with a changed record
    assert len(sink.lookups) == 2 + 2


def test_a_page_of_unchanged_records_needs_only_one_lookup():
    sink = MemorySink()
    records = generated_contacts(5)
    sync(plan(), records, sink)
    before = len(sink.lookups)
    sync(plan(), records, sink)
    assert len(sink.lookups) == before + 1


def test_excluded_ids_are_not_imported():
    sink = MemorySink()
    records = generated_contacts(3)
    summary = sync(plan(excluded_ids={records[1]["Id"][:15]}), records, sink)
    assert summary.counts["excluded_in_preview"] == 1 and summary.counts["imported"] == 2
    assert sink.participant_for(SourceRef(ORG, "Contact", records[1]["Id"])) is None
    assert [o.reason for o in sink.outcomes if o.outcome == "excluded_in_preview"] == [
        "Removed in the preview"]


def test_bad_record_fails_alone_with_its_reason():
    sink = MemorySink()
    records = generated_contacts(3)
    records[1]["Id"] = "not-an-id"
    summary = sync(plan(), records, sink)
    assert summary.status == "succeeded"
    assert summary.counts["failed"] == 1 and summary.counts["imported"] == 2
    failed = [o for o in sink.outcomes if o.outcome == "failed"]
    assert failed[0].record_id == "not-an-id" and "could not be read" in failed[0].reason
    assert summary.reason == "1 records failed; see their reasons"


def test_records_without_contact_point_or_required_fields_are_skipped_with_reasons():
    sink = MemorySink()
    records = [contact(1, Email="Sam Lee <sam@example.org>"),
               contact(2, LastName=None),
               contact(3, Consent_Status__c="Withdrawn"),
               contact(4)]
    summary = sync(plan(mapping=Mapping(required=("last_name",))), records, sink)
    assert summary.counts["skipped"] == 3 and summary.counts["imported"] == 1
    reasons = {o.record_id: o.reason for o in sink.outcomes}
    assert reasons[records[0]["Id"]].endswith("No valid email or phone number.")
    assert "display name" in reasons[records[0]["Id"]]
    assert reasons[records[1]["Id"]] == "Required field last name is empty."
    assert reasons[records[2]["Id"]] == "Opted out in Salesforce"


def test_invalid_email_with_valid_phone_imports_with_the_flag_and_raw_value():
    sink = MemorySink()
    record = contact(1, Email="sam.lee@example.com.", Phone="+1 201 555 0150")
    summary = sync(plan(), [record], sink)
    assert summary.counts["imported"] == 1
    participant = next(iter(sink.participants.values()))
    assert "email" not in participant.values and participant.values["phone"] == "+12015550150"
    link = sink.links[SourceRef(ORG, "Contact", record["Id"])]
    assert [(f.code, f.raw) for f in link.flags] == [("invalid_email", "sam.lee@example.com.")]


def test_within_page_duplicates_resolve_to_one_participant():
    sink = MemorySink()
    records = [contact(1, Email="same@example.org"), contact(2, Email="SAME@example.org")]
    summary = sync(plan(), records, sink)
    assert len(sink.participants) == 1
    assert summary.counts["imported"] == 1 and summary.counts["unchanged"] == 1
    assert summary.counts["skipped"] == 0
    merged = [o for o in sink.outcomes if o.outcome == "unchanged"][0]
    assert merged.reason.startswith(
        f"Duplicate within the set (same email as {records[0]['Id']}); merged")
    # the same person: merged (linked), not "skipped" -- a skipped record is never linked
    assert sink.participant_for(SourceRef(ORG, "Contact", records[1]["Id"])).id == 1


def test_phone_match_never_hands_a_person_with_an_email_to_someone_without_one():
    """Aroha (email, opted out, phone P) after Ingrid (no email, phone P) in one run, then
    Aroha opts in and is renamed: Ingrid stays Ingrid; Aroha is never linked to her."""
    sink = MemorySink()
    ingrid = contact(20, FirstName="Ingrid", LastName="Novak", Email=None,
                     Phone="+1 201 555 0177", Consent_Status__c=None, HasOptedOutOfEmail=False)
    aroha = contact(21, FirstName="Aroha", LastName="Costa", Email="aroha.costa@example.org",
                    Phone="+1 201 555 0177", Consent_Status__c="Withdrawn")
    first = sync(plan(), [ingrid, aroha], sink)
    assert first.counts["imported"] == 1 and first.counts["skipped"] == 1
    skipped = next(o for o in sink.outcomes if o.record_id == aroha["Id"])
    assert (skipped.outcome, skipped.reason, skipped.participant) == (
        "skipped", "Opted out in Salesforce", None)
    assert skipped.email == "aroha.costa@example.org"
    assert skipped.email_key == "aroha.costa@example.org" and skipped.phone_key == "+12015550177"
    aroha_ref = SourceRef(ORG, "Contact", aroha["Id"])
    assert sink.participant_for(aroha_ref) is None
    ingrid_person = sink.participant_for(SourceRef(ORG, "Contact", ingrid["Id"]))
    before = (dict(ingrid_person.values), ingrid_person.consent)

    second = sync(plan(), [ingrid, {**aroha, "FirstName": "Aroha2",
                                    "Consent_Status__c": "Granted"}], sink)
    assert second.counts["imported"] == 1 and second.counts["unchanged"] == 1
    assert (dict(ingrid_person.values), ingrid_person.consent) == before
    assert ingrid_person.values["first_name"] == "Ingrid"
    own = sink.participant_for(aroha_ref)
    assert own.id != ingrid_person.id and own.values["first_name"] == "Aroha2"
    assert own.consent == Consent.OPTED_IN and len(sink.participants) == 2


def test_email_less_records_sharing_a_phone_still_merge():
    sink = MemorySink()
    a = contact(30, Email=None, Phone="+1 201 555 0142 ext 42")
    b = contact(31, Email=None, Phone="+1 201 555 0142 ext 42")
    summary = sync(plan(), [a], sink)
    summary = sync(plan(), [b], sink)
    assert summary.counts["updated"] == 1 and len(sink.participants) == 1
    assert sink.outcomes[-1].reason == "Matched an existing participant by phone"


def test_sinks_refuse_to_link_a_skipped_record():
    from sync.sink import PageChanges, RecordOutcome, SourceLinkWrite
    sink = MemorySink()
    pid = sink.insert_participant(ParticipantValues(first_name="Ingrid"))
    ref = SourceRef(ORG, "Contact", "003Dn00000Ph1XaIAJ")
    changes = PageChanges(page_number=1, links=[SourceLinkWrite(ref, pid, "h", None, ())],
                          outcomes=[RecordOutcome(ref, ref.record_id, "skipped", "dup")])
    with pytest.raises(ValueError):
        sink.commit_page(changes)
    assert sink.participant_for(ref) is None


def test_existing_participant_matched_by_email_is_updated_and_linked():
    sink = MemorySink()
    existing = sink.insert_participant(ParticipantValues(email="p00001@example.org",
                                                         email_key="p00001@example.org"))
    summary = sync(plan(), [contact(1)], sink)
    assert summary.counts["updated"] == 1 and len(sink.participants) == 1
    assert sink.outcomes[0].reason == "Matched an existing participant by email"
    assert sink.participant_for(SourceRef(ORG, "Contact", contact(1)["Id"])).id == existing


def test_email_taken_by_another_participant_is_skipped_not_merged():
    sink = MemorySink()
    sync(plan(), [contact(1), contact(2)], sink)
    moved = contact(2, Email="p00001@example.org")
    summary = sync(plan(), [moved], sink)
    assert summary.counts["skipped"] == 1 and len(sink.participants) == 2
    assert "already belongs to another participant" in sink.outcomes[-1].reason


def test_phone_never_merges_people_whose_emails_differ():
    sink = MemorySink()
    records = [contact(1, Phone="+1 201 555 0150"), contact(2, Phone="+1 201 555 0150"),
               contact(3, Email=None, Phone="+1 201 555 0150")]
    sync(plan(), records, sink)
    # a phone merges only people who both have no valid email: three people here
    assert len(sink.participants) == 3
    third = sink.participant_for(SourceRef(ORG, "Contact", records[2]["Id"]))
    assert third.id == 3 and "email" not in third.values


def test_sink_conflict_is_looked_up_again_and_retried_once():
    sink = MemorySink()
    raced = []

    def other_plan_inserts_first(changes):
        if not raced:
            raced.append(changes.page_number)
            sink.insert_participant(ParticipantValues(email="p00002@example.org",
                                                      email_key="p00002@example.org"))

    sink.before_commit = other_plan_inserts_first
    summary = sync(plan(), generated_contacts(3), sink)
    assert summary.status == "succeeded"
    assert len(sink.participants) == 3
    assert summary.counts["imported"] == 2 and summary.counts["updated"] == 1


def test_repeated_conflict_fails_the_run_without_writing_the_page():
    sink = MemorySink()

    def always(changes):
        raise SinkConflict("email key taken")

    sink.before_commit = always
    summary = sync(plan(), generated_contacts(3), sink)
    assert summary.status == "failed" and "retried on the next run" in summary.reason
    assert sink.participants == {} and sink.cursor is None


@pytest.mark.parametrize("error, status, reason", [
    (SourceAuthFailed(), "failed",
     "Salesforce refused the connection's credentials; reconnect Salesforce"),
    (SourceQueryError("unexpected token: FROMM"), "failed",
     "Salesforce refused the query: unexpected token: FROMM"),
    (SourceTransient("read timed out"), "failed", "Salesforce unavailable: read timed out"),
])
def test_source_errors_on_the_first_page(error, status, reason):
    sink = MemorySink()
    summary = sync(plan(), generated_contacts(3), sink, failures={1: error})
    assert (summary.status, summary.reason) == (status, reason)
    assert summary.pages == 0 and summary.cursor is None and sink.participants == {}
    assert summary.needs_reconnect is isinstance(error, SourceAuthFailed)


def test_invitations_only_for_eligible_participants():
    sink = MemorySink(suppressed_email_keys=frozenset({"p00003@example.org"}))
    invite = plan(action=Action.INVITE_STUDY, target_id="study-7",
                  invite_confirmation="confirmed by user 5")
    records = [contact(1), contact(2, Consent_Status__c=None), contact(3),
               contact(4, Email=None, Phone="+1 201 555 0150")]
    summary = sync(invite, records, sink)
    assert summary.counts["invited"] == 1 and summary.counts["imported"] == 4
    [invitation] = sink.invitations
    assert invitation.participant_id == sink.participant_for(
        SourceRef(ORG, "Contact", records[0]["Id"])).id
    assert (invitation.target_id, invitation.consent, invitation.confirmation) == (
        "study-7", Consent.OPTED_IN, "confirmed by user 5")
    assert invitation.consent_evidence == (("Consent_Status__c", "Granted"),
                                           ("HasOptedOutOfEmail", None))
    reasons = {o.record_id: o.reason for o in sink.outcomes}
    assert reasons[records[1]["Id"]] == "Not invited: consent is unknown"
    assert reasons[records[2]["Id"]] == ("consent set to opted out: on the suppression list; "
                                         "Not invited: the email is suppressed")
    assert sink.participant_for(SourceRef(ORG, "Contact", records[2]["Id"])).consent == Consent.OPTED_OUT
    assert reasons[records[3]["Id"]] == "Not invited: no valid email"
    # a change that makes the record sync again never invites twice
    again = sync(invite, [contact(1, FirstName="Again")], sink)
    assert again.counts["invited"] == 0 and len(sink.invitations) == 1
    assert sink.outcomes[-1].reason == ("Already imported; changed in Salesforce since the last run; "
                                        "Not invited: already invited")


def test_a_suppressed_person_stays_opted_out_whatever_salesforce_says():
    """An unsubscribe in the product (consent opted out, the keys on the suppression list)
    outranks Salesforce's "Granted": by the record's email, by the participant's own email after
    Salesforce changed it, and by phone."""
    invite = plan(action=Action.INVITE_STUDY, target_id="study:7", invite_confirmation="ok")
    sink = MemorySink()
    people = [contact(1), contact(2), contact(3, Phone="+1 201 555 0150")]
    sync(plan(), people, sink)
    ids = [sink.participant_for(SourceRef(ORG, "Contact", r["Id"])).id for r in people]
    for pid in ids:  # what services.invitations.unsubscribe does to the participant
        sink.participants[pid].consent = Consent.OPTED_OUT
    phone_key = sink.participants[ids[2]].phone_key
    sink.suppressed_email_keys = frozenset({"p00001@example.org", "p00002@example.org"})
    sink.suppressed_phone_keys = frozenset({phone_key})

    changed = [contact(1, FirstName="Again"), contact(2, Email="new.address@example.org"),
               contact(3, Phone="+1 201 555 0150", Email="other@example.org")]
    summary = sync(invite, changed, sink)
    assert summary.counts["updated"] == 3 and summary.counts["invited"] == 0
    assert sink.invitations == []
    assert [sink.participants[pid].consent for pid in ids] == [Consent.OPTED_OUT] * 3
    reasons = [o.reason for o in sink.outcomes[-3:]]
    already = "Already imported; changed in Salesforce since the last run; "
    assert reasons == [
        already + "consent kept opted out: on the suppression list; Not invited: the email is suppressed",
        already + "consent kept opted out: on the suppression list; Not invited: the email is suppressed",
        already + "consent kept opted out: on the suppression list; Not invited: the phone number is suppressed",
    ]
    # Not suppressed: Salesforce's consent is applied as before.
    sync(plan(), [contact(4)], sink)
    assert sink.participant_for(SourceRef(ORG, "Contact", contact(4)["Id"])).consent == Consent.OPTED_IN


def test_unconfirmed_invite_plan_invites_nobody():
    sink = MemorySink()
    summary = sync(plan(action=Action.INVITE_TASK, target_id="t1"), [contact(1)], sink)
    assert summary.counts["invited"] == 0 and sink.invitations == []
    assert sink.outcomes[0].reason == "Not invited: invitations for this plan are not confirmed"


def test_opt_out_of_a_linked_record_follows_the_policy_and_withdraws_invitations():
    sink = MemorySink()
    invite = plan(action=Action.INVITE_STUDY, target_id="s", invite_confirmation="ok",
                  leaving_policy=LeavingPolicy.ARCHIVE)
    sync(invite, [contact(1)], sink)
    summary = sync(invite, [contact(1, HasOptedOutOfEmail=True)], sink)
    participant = sink.participants[1]
    assert summary.counts["updated"] == 1
    assert sink.outcomes[-1].reason == "Opted out in Salesforce; policy: archive"
    assert participant.consent == Consent.OPTED_OUT and participant.archived
    assert [i.status for i in sink.invitations] == ["withdrawn"]


def test_deleted_record_marks_its_source_and_keeps_the_participant_by_default():
    sink = MemorySink()
    sync(plan(), [contact(1)], sink)
    summary = sync(plan(), [contact(1, IsDeleted=True)], sink)
    assert summary.counts["updated"] == 1
    assert sink.outcomes[-1].reason == "Deleted in Salesforce; policy: keep"
    assert sink.links[SourceRef(ORG, "Contact", contact(1)["Id"])].left == "deleted"
    assert not sink.participants[1].archived and len(sink.participants) == 1


def test_run_summary_times_come_from_the_clock():
    times = iter([datetime(2024, 6, 1, 9, tzinfo=timezone.utc),
                  datetime(2024, 6, 1, 9, 1, tzinfo=timezone.utc)])
    summary = run(plan(), PagedSource([contact(1)]), MemorySink(), ListLog(),
                  clock=lambda: next(times))
    assert (summary.finished_at - summary.started_at).seconds == 60


def test_the_collector_skips_objects_older_than_the_run_and_gets_them_back_after():
    """The heap that existed before the run is frozen while it runs (the collector's full
    collections walked the whole application per page) and handed back when it ends, also
    when the run stops on an error."""
    import gc
    sink = MemorySink()
    seen = []

    def pages(fail):
        seen.append(gc.get_freeze_count())
        yield generated_contacts(3)
        if fail:
            raise SourceTransient("down")

    assert gc.get_freeze_count() == 0
    summary = run(plan(), pages(False), sink, ListLog())
    assert summary.status == "succeeded" and summary.counts["imported"] == 3
    assert gc.get_freeze_count() == 0
    assert run(plan(), pages(True), sink, ListLog()).status == "partial"
    assert gc.get_freeze_count() == 0
    assert all(n > 0 for n in seen) and len(seen) == 2
    gc.disable()
    try:
        run(plan(), pages(False), sink, ListLog())
    finally:
        gc.enable()
    assert seen[-1] == 0  # a process that turned the collector off is left as it is
