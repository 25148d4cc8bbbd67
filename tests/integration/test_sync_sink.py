"""The database sink against the sink contract (sync.sink): the behaviours sync.memory.MemorySink
shows, on the real tables: all-or-nothing pages, SinkConflict on a workspace uniqueness rule,
lookups by link / email / phone / suppression / invitation, the leaving policies."""
from datetime import datetime, timezone

import pytest
from sqlalchemy import func, select

from core.extensions import db
from models import (Community, CommunityMember, ImportPlan, Invitation, Participant, ParticipantSource,
                    RunOutcome, SuppressionEntry, SyncRun)
from sync.engine import run as run_engine
from sync.errors import SinkConflict
from sync.fakes import ListLog, PagedSource, generated_contacts
from sync.mapping import SourceRef
from sync.plan import Action, Consent, ConsentRule, LeavingPolicy, Plan
from sync.sink import (Departure, Lookup, NewParticipant, NewParticipantRef, PageChanges,
                       ParticipantValues, RecordOutcome, SourceLinkWrite)
from tests.support.sinks import fresh_sink

ORG = "00DDn00000Org1AAA"


@pytest.fixture
def ctx(app):
    communities = []

    def community_target(workspace):
        community = Community(workspace_id=workspace.id, name="Panel")
        db.session.add(community)
        db.session.flush()
        communities.append(community)
        return {"target_community_id": community.id}

    workspace, plan, run, sink = fresh_sink("community", community_target)
    return workspace, plan, run, communities[0], sink


def ref(n):
    return SourceRef(ORG, "Contact", f"003Dn0000000{n:03d}AAA")


def page(*creates, cursor=None):
    changes = PageChanges(page_number=1, fingerprint="f1", cursor=cursor)
    for i, email in enumerate(creates, start=1):
        new = NewParticipantRef(i)
        changes.creates.append(NewParticipant(new, ParticipantValues(email=email, email_key=email, last_name="X")))
        changes.links.append(SourceLinkWrite(ref(i), new, f"h{i}", None))
        changes.outcomes.append(RecordOutcome(ref(i), ref(i).record_id, "imported", None, new))
    changes.counts = {"imported": len(creates)}
    return changes


def test_a_page_is_all_or_nothing_and_conflicts_raise(ctx):
    workspace, plan, run, _, sink = ctx
    when = datetime(2024, 5, 1, tzinfo=timezone.utc)
    ids = sink.commit_page(page("a@example.org", "b@example.org", cursor=when))
    assert sorted(ids.values()) == sorted(db.session.execute(select(Participant.id)).scalars().all())
    with pytest.raises(SinkConflict):
        sink.commit_page(page("c@example.org", "a@example.org", cursor=datetime(2024, 6, 1, tzinfo=timezone.utc)))
    assert db.session.execute(select(func.count()).select_from(Participant)).scalar_one() == 2
    assert db.session.execute(select(func.count()).select_from(RunOutcome)).scalar_one() == 2
    run = db.session.get(SyncRun, run.id)
    assert (run.imported, run.fetched) == (2, 2)
    plan = db.session.get(ImportPlan, plan.id)
    assert (plan.cursor_at, plan.cursor_fingerprint) == (when, "f1")


def test_lookup_answers_links_keys_suppression_and_invitations(ctx):
    workspace, plan, run, community, sink = ctx
    ids = sink.commit_page(page("a@example.org", "b@example.org"))
    a = ids[NewParticipantRef(1)]
    db.session.add_all([SuppressionEntry(workspace_id=workspace.id, email_key="b@example.org"),
                        Invitation(workspace_id=workspace.id, participant_id=a, target_type="community",
                                   target_key=f"community:{community.id}", community_id=community.id)])
    db.session.commit()
    result = sink.lookup(Lookup(refs=frozenset({ref(1), ref(9)}), email_keys=frozenset({"b@example.org", "z@x.org"}),
                                invite_target=(Action.COMMUNITY, f"community:{community.id}")))
    assert set(result.links) == {ref(1)} and result.links[ref(1)].source_hash == "h1"
    assert result.by_email == {"b@example.org": ids[NewParticipantRef(2)]}
    assert result.suppressed_email_keys == frozenset({"b@example.org"})
    assert result.participants[a].invited is True
    assert result.participants[ids[NewParticipantRef(2)]].invited is False


@pytest.mark.parametrize("kind, policy, status, consent, withdrawn", [
    ("deleted", LeavingPolicy.KEEP, "active", "opted_in", "pending"),
    ("deleted", LeavingPolicy.MARK_OPTED_OUT, "active", "opted_out", "withdrawn"),
    ("merged", LeavingPolicy.ARCHIVE, "archived", "opted_in", "withdrawn"),
    ("opted_out", LeavingPolicy.KEEP, "active", "opted_out", "withdrawn"),
])
def test_leaving_policies(ctx, kind, policy, status, consent, withdrawn):
    workspace, plan, run, community, sink = ctx
    ids = sink.commit_page(page("a@example.org"))
    a = ids[NewParticipantRef(1)]
    person = db.session.get(Participant, a)
    person.consent_status = "opted_in"
    db.session.add(Invitation(workspace_id=workspace.id, participant_id=a, target_type="community",
                              target_key=f"community:{community.id}", community_id=community.id))
    db.session.commit()
    changes = PageChanges(page_number=2, fingerprint="f1")
    changes.departures.append(Departure(ref(1), a, kind, policy, f"{kind}; policy: {policy.value}"))
    sink.commit_page(changes)
    db.session.expire_all()
    person = db.session.get(Participant, a)
    assert (person.status, person.consent_status) == (status, consent)
    assert db.session.execute(select(Invitation.status)).scalar_one() == withdrawn
    assert db.session.execute(select(ParticipantSource.source_state)).scalar_one() == kind
    assert db.session.get(SyncRun, run.id).left == 1


def test_the_engine_over_the_database_sink_invites_into_a_community(ctx):
    workspace, plan, run, community, sink = ctx
    spec = Plan(org_id=ORG, object_name="Contact", action=Action.COMMUNITY, target_id=f"community:{community.id}",
                invite_confirmation="confirmed", consent=ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",)))
    summary = run_engine(spec, PagedSource(generated_contacts(30), page_size=10), sink, ListLog())
    assert (summary.status, summary.counts["imported"], summary.counts["invited"], summary.pages) == \
        ("succeeded", 30, 30, 3)
    assert db.session.execute(select(func.count()).select_from(CommunityMember)
                              .where(CommunityMember.added_via == "salesforce")).scalar_one() == 30
    assert len(sink.invitation_ids) == 30
    assert db.session.execute(select(func.count()).select_from(RunOutcome)).scalar_one() == 30
    assert [r.seq for r in db.session.execute(select(RunOutcome).order_by(RunOutcome.seq)).scalars()] == \
        list(range(1, 31))
    assert db.session.get(Participant, 1).consent_status == Consent.OPTED_IN.value
