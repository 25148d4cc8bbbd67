"""The plan's skip memory: a record skipped before (not importable) that is fetched again with the
same source hash is skipped for the same reason without being validated again; anything that
could change the verdict (its values, the plan's mapping or filters, the validators, a participant
now having its email or phone) has it validated and decided as usual."""
import random
from dataclasses import replace

import pytest

from sync import engine
from sync.engine import run
from sync.fakes import ListLog, PagedSource
from sync.mapping import SourceRef
from sync.memory import MemorySink
from sync.plan import Consent, ConsentRule, Mapping, Plan
from sync.sink import ParticipantValues
from tests.support.spies import contact, skipped_set, validated  # noqa: F401  (validated: a fixture)

ORG = "00DDn00000Org1AAA"
CONSENT = ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",),
                      opted_out_values=("Withdrawn",), opt_out_flags=("HasOptedOutOfEmail",))


def plan(**kw):
    kw = {"object_name": "Contact", "consent": CONSENT, "mapping": Mapping(required=("last_name",)),
          **kw}
    return Plan(org_id=ORG, **kw)


def ref(record):
    return SourceRef(ORG, "Contact", record["Id"])


def sync(p, records, sink, **kw):
    log = kw.pop("log", ListLog())
    return run(p, PagedSource(records, page_size=kw.pop("page_size", 2000)), sink, log, **kw)




def test_a_skipped_record_fetched_again_unchanged_is_not_validated_again(validated):
    sink = MemorySink()
    records = skipped_set()
    p = plan()
    first = sync(p, records, sink)
    assert first.counts["skipped"] == 4 and first.counts["imported"] == 1
    assert len(validated) == 5
    assert set(sink.skips) == {ref(r) for r in records} - {ref(records[3])}
    before = {o.record_id: o for o in sink.outcomes}

    validated.clear()
    second = sync(p, records, sink)
    assert validated == []
    assert second.counts["skipped"] == 4 and second.counts["unchanged"] == 1
    again = {o.record_id: o for o in sink.outcomes[5:]}
    for record in records[:3] + records[4:]:
        old, new = before[record["Id"]], again[record["Id"]]
        assert new.outcome == "skipped" and new.remembered and not old.remembered
        # the run log still says why, with the same flags and contact points
        assert (new.reason, new.flags, new.email, new.email_key, new.phone_key) == (
            old.reason, old.flags, old.email, old.email_key, old.phone_key)
    assert again[records[2]["Id"]].reason == "Opted out in Salesforce"
    assert again[records[2]["Id"]].email_key == "p00003@example.org"
    assert "display name" in again[records[0]["Id"]].reason
    assert not sink.participant_for(ref(records[0]))


def test_a_skipped_record_that_changes_is_validated_and_imported_and_forgotten(validated):
    sink = MemorySink()
    records = skipped_set()
    sync(plan(), records, sink)
    fixed = [dict(r) for r in records]
    fixed[0]["Email"] = "sam@example.org"
    validated.clear()
    summary = sync(plan(), fixed, sink)
    assert validated == [records[0]["Id"]]
    assert summary.counts["imported"] == 1 and summary.counts["skipped"] == 3
    assert sink.participant_for(ref(records[0])).values["email"] == "sam@example.org"
    assert ref(records[0]) not in sink.skips and len(sink.skips) == 3

    validated.clear()
    assert sync(plan(), fixed, sink).counts["unchanged"] == 2
    assert validated == []
    # linked now: its bad email later updates the participant (a linked record is never skipped
    # for it), and nothing is remembered for it
    assert sync(plan(), records, sink).counts["updated"] == 1
    assert ref(records[0]) not in sink.skips


def test_a_record_skipped_again_for_another_reason_is_remembered_anew(validated):
    sink = MemorySink()
    records = skipped_set()
    sync(plan(), records, sink)
    changed = [dict(r) for r in records]
    changed[0]["Email"] = None
    summary = sync(plan(), changed, sink)
    assert summary.counts["skipped"] == 4
    memo = sink.skips[ref(records[0])]
    assert memo.reason == "No valid email or phone number." and memo.email is None
    validated.clear()
    sync(plan(), changed, sink)
    assert validated == []
    last = {o.record_id: o for o in sink.outcomes[-5:]}[records[0]["Id"]]
    assert last.reason == "No valid email or phone number." and last.remembered


@pytest.mark.parametrize("change", [
    {"mapping": Mapping(email=("Email", "npe01__HomeEmail__c"))},  # another mapping
    {"mapping": Mapping()},  # nothing required any more
    {"default_region": "US"},  # the workspace's phone region
    {"filters": "LeadSource = 'Web'"},  # other filters
    {"consent": ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",))},
])
def test_a_changed_plan_validates_remembered_skips_again(validated, change):
    sink = MemorySink()
    records = [contact(1, Email=None, Phone="201 555 0150", npe01__HomeEmail__c="h@example.org"),
               contact(2, Consent_Status__c="Withdrawn")]
    first = sync(plan(), records, sink)
    assert first.counts["skipped"] == 2
    validated.clear()
    changed_plan = plan(**change)
    assert changed_plan.fingerprint != plan().fingerprint
    sync(changed_plan, records, sink)
    assert sorted(validated) == sorted(r["Id"] for r in records)
    assert all(not o.remembered for o in sink.outcomes[2:])


def test_the_mapping_that_makes_a_record_valid_imports_it():
    sink = MemorySink()
    record = contact(1, Email=None, Phone="201 555 0150")
    assert sync(plan(), [record], sink).counts["skipped"] == 1
    summary = sync(plan(default_region="US"), [record], sink)
    assert summary.counts["imported"] == 1 and not sink.skips
    assert sink.participant_for(ref(record)).values["phone"] == "+12015550150"


def test_other_validator_versions_validate_remembered_skips_again(validated, monkeypatch):
    sink = MemorySink()
    records = skipped_set()
    sync(plan(), records, sink)
    monkeypatch.setattr(engine, "SKIP_RULES", engine.SKIP_RULES + "; phonenumbers 99")
    validated.clear()
    sync(plan(), records, sink)
    assert len(validated) == 5 - 1  # the linked one is unchanged
    assert not any(o.remembered for o in sink.outcomes[5:])
    validated.clear()
    sync(plan(), records, sink)
    assert validated == []


def test_a_remembered_skip_whose_email_now_belongs_to_a_participant_is_decided_again(validated):
    """Opted out, valid email, nobody had it: skipped. Then a participant with that email
    appears (another plan, a CSV import): the same record now updates that person's consent."""
    sink = MemorySink()
    record = contact(3, Consent_Status__c="Withdrawn")
    assert sync(plan(), [record], sink).counts["skipped"] == 1
    pid = sink.insert_participant(ParticipantValues(
        first_name="Pat", email="p00003@example.org", email_key="p00003@example.org",
        consent=Consent.OPTED_IN))
    validated.clear()
    summary = sync(plan(), [record], sink)
    assert validated == [record["Id"]]
    assert summary.counts["updated"] == 1
    assert sink.participants[pid].consent == Consent.OPTED_OUT
    assert sink.participant_for(ref(record)).id == pid and not sink.skips


def test_a_remembered_skip_matching_an_earlier_record_of_the_page_is_decided_again(validated):
    """An earlier record of the same page imports the person the remembered skip's email
    names: the skip is not repeated blindly, the record is validated and merged as usual."""
    sink = MemorySink()
    opted_out = contact(3, Email="same@example.org", Consent_Status__c="Withdrawn")
    assert sync(plan(), [opted_out], sink).counts["skipped"] == 1
    newcomer = contact(1, Email="same@example.org")  # sorts before it (older stamp)
    validated.clear()
    summary = sync(plan(), [newcomer, opted_out], sink)
    assert validated == [newcomer["Id"], opted_out["Id"]]
    assert summary.counts["imported"] == 1 and summary.counts["skipped"] == 0
    assert sink.participant_for(ref(opted_out)) is sink.participant_for(ref(newcomer))


def test_a_converted_lead_whose_contact_is_linked_later_is_decided_again(validated):
    lead_plan = plan(object_name="Lead")
    from sync.ids import checksum
    lead_id = "00QDn00000Lead1"
    lead = {"Id": lead_id + checksum(lead_id), "FirstName": "Lee", "LastName": "Lead", "Email": None,
            "IsConverted": True, "ConvertedContactId": contact(7)["Id"],
            "SystemModstamp": contact(7)["SystemModstamp"]}
    sink = MemorySink()
    assert sync(lead_plan, [lead], sink).counts["skipped"] == 1
    sync(plan(), [contact(7)], sink)  # the contact is imported by the Contact plan
    validated.clear()
    summary = sync(lead_plan, [lead], sink)
    assert validated == [lead["Id"]] and summary.counts["unchanged"] == 1
    assert "Converted lead" in sink.outcomes[-1].reason


def test_identity_conflicts_are_not_remembered():
    sink = MemorySink()
    sync(plan(), [contact(1), contact(2)], sink)
    summary = sync(plan(), [contact(2, Email="p00001@example.org")], sink)
    assert summary.counts["skipped"] == 1 and not sink.skips


def test_remembered_skips_with_validation_in_a_helper_process(validated):
    records = [contact(n, Email=f"bad{n}@" if n % 3 else f"p{n}@example.org")
               for n in range(1, 61)]
    sink = MemorySink()
    first = run(plan(), PagedSource(records), sink, ListLog(), validation_processes=1,
                parallel_min_records=10)
    assert first.counts["skipped"] == 40 and first.counts["imported"] == 20
    changed = [dict(r) for r in records]
    for r in changed[1:30:3]:  # ten of the skipped ones become valid
        r["Email"] = f"fixed.{r['Id']}@example.org"
    validated.clear()
    second = run(plan(), PagedSource(changed), sink, ListLog(), validation_processes=1,
                 parallel_min_records=5)
    assert second.counts == {**second.counts, "imported": 10, "skipped": 30, "unchanged": 20}
    assert len(validated) == 10  # in this process or the helper: only the changed ones
    assert all(o.remembered for o in sink.outcomes[60:] if o.outcome == "skipped")


def test_the_page_log_counts_the_skips_not_validated_again():
    sink = MemorySink()
    records = skipped_set()
    sync(plan(), records, sink)
    log = ListLog()
    sync(plan(), records, sink, log=log)
    (level, message, data), = [e for e in log.events if "committed" in e[1]]
    assert data["counts"]["skipped"] == 4 and data["remembered"] == 4
    assert message.endswith("5 records (4 skipped as before, not validated again)")


class ForgetfulSink(MemorySink):
    """A MemorySink that never answers with a remembered skip: the engine as it was without."""

    def lookup(self, query):
        return super().lookup(replace(query, skips=frozenset()))


def _messy(rng: random.Random, n: int) -> dict:
    emails = [None, "", f"p{n}@example.org", f"shared{rng.randrange(4)}@example.org",
              "Sam <sam@example.org>", "nobody@", f"P{n}@Example.org"]
    phones = [None, "+1 201 555 01{:02d}".format(rng.randrange(6)), "12", "201 555 0150"]
    return contact(n, Email=rng.choice(emails), Phone=rng.choice(phones),
                   LastName=rng.choice([f"Person{n}", None]),
                   Consent_Status__c=rng.choice(["Granted", "Withdrawn", None]),
                   HasOptedOutOfEmail=rng.choice([False, False, True]),
                   IsDeleted=rng.choice([False] * 8 + [True]))


@pytest.mark.parametrize("seed", range(6))
def test_runs_decide_the_same_with_and_without_the_memory(seed):
    """Messy records, several runs with changes, participants added from elsewhere and a plan
    change in between: every outcome (but the "remembered" mark), participant and link is the
    same whether skips are remembered or not."""
    rng = random.Random(seed)
    records = [_messy(rng, n) for n in range(1, 81)]
    remembering, forgetful = MemorySink(), ForgetfulSink()
    plans = [plan(), plan(mapping=Mapping(), default_region="US")]
    current = plans[0]
    reused = 0
    for round_ in range(6):
        if round_ == 4:
            current = plans[1]
        page_size = rng.choice([7, 30, 100])
        for sink in (remembering, forgetful):
            sync(current, records, sink, page_size=page_size)
        reused += sum(o.remembered for o in remembering.outcomes)
        strip = [replace(o, remembered=False) for o in remembering.outcomes]
        assert strip == forgetful.outcomes
        assert {k: (p.values, p.consent, p.archived) for k, p in remembering.participants.items()} == {
            k: (p.values, p.consent, p.archived) for k, p in forgetful.participants.items()}
        assert {r: (s.link, s.left) for r, s in remembering.links.items()} == {
            r: (s.link, s.left) for r, s in forgetful.links.items()}
        assert not set(remembering.skips) & set(remembering.links)
        # changes between runs: a few records change, a few people arrive from elsewhere
        for k in rng.sample(range(len(records)), 8):
            records[k] = _messy(rng, k + 1)
        key = f"shared{rng.randrange(4)}@example.org"
        for sink in (remembering, forgetful):
            if key not in sink.state.email_index:
                sink.insert_participant(ParticipantValues(email=key, email_key=key))
    assert reused > 0
