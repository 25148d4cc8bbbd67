from sync.identity import PageIdentity
from sync.mapping import map_record
from sync.plan import Plan
from sync.sink import KnownParticipant, Link, LookupResult, NewParticipantRef

ORG = "00DDn00000Org1AAA"
PLAN = Plan(org_id=ORG, object_name="Contact")


def record(record_id, **fields):
    return map_record(PLAN, {"Id": record_id, **fields})


A = record("003Dn00000Ph1XaIAJ")
B = record("003Dn00000Ph1XbIAJ")


known = LookupResult


def test_own_link_wins_over_email_and_phone():
    result = known(links={A.ref: Link(A.ref, 7, "h")},
                   participants={7: KnownParticipant(7, "a@x.org", None),
                                 8: KnownParticipant(8, "b@x.org", None)},
                   by_email={"b@x.org": 8})
    found = PageIdentity(result).resolve(A, None, None)
    assert (found.participant, found.matched_by) == (7, "record id")


def test_email_then_phone():
    result = known(participants={8: KnownParticipant(8, "b@x.org", "+12015550123")},
                   by_email={"b@x.org": 8}, by_phone={"+12015550123": [8]})
    identity = PageIdentity(result)
    assert identity.resolve(A, "b@x.org", None).matched_by == "email"
    identity = PageIdentity(known(participants={9: KnownParticipant(9, None, "+12015550123")},
                                  by_phone={"+12015550123": [9]}))
    assert identity.resolve(A, None, "+12015550123").matched_by == "phone"


def test_phone_alone_never_merges_different_emails():
    result = known(participants={8: KnownParticipant(8, "b@x.org", "+12015550123")},
                   by_phone={"+12015550123": [8]})
    assert PageIdentity(result).resolve(A, "a@x.org", "+12015550123").participant is None


def test_phone_never_merges_a_record_with_an_email_into_an_email_less_participant():
    result = known(participants={8: KnownParticipant(8, None, "+12015550123")},
                   by_phone={"+12015550123": [8]})
    assert PageIdentity(result).resolve(A, "a@x.org", "+12015550123").participant is None
    # nor an email-less record into a participant with an email
    result = known(participants={8: KnownParticipant(8, "b@x.org", "+12015550123")},
                   by_phone={"+12015550123": [8]})
    assert PageIdentity(result).resolve(A, None, "+12015550123").participant is None


def test_switchboard_extensions_are_different_keys():
    result = known(participants={8: KnownParticipant(8, None, "+12015550123;ext=42")},
                   by_phone={"+12015550123;ext=42": [8]})
    identity = PageIdentity(result)
    assert identity.resolve(A, None, "+12015550123;ext=43").participant is None
    assert identity.resolve(A, None, "+12015550123").participant is None


def test_second_record_of_a_page_is_a_duplicate_of_the_first():
    identity = PageIdentity(LookupResult())
    new = identity.new_participant()
    identity.claim(new, A, None, "+12015550123;ext=42")
    found = identity.resolve(B, None, "+12015550123;ext=42")
    assert found.participant == NewParticipantRef(1)
    assert found.duplicate_of == A.record_id and found.matched_by == "phone"


def test_email_moved_within_the_page_is_free_for_another_record():
    result = known(links={A.ref: Link(A.ref, 7, "h")},
                   participants={7: KnownParticipant(7, "old@x.org", None)},
                   by_email={"old@x.org": 7})
    identity = PageIdentity(result)
    identity.claim(7, A, "new@x.org", None)
    assert identity.resolve(B, "old@x.org", None).participant is None
    assert identity.resolve(B, "new@x.org", None).duplicate_of == A.record_id


def test_email_of_another_participant_is_a_conflict():
    result = known(links={A.ref: Link(A.ref, 7, "h")},
                   participants={7: KnownParticipant(7, "a@x.org", None),
                                 8: KnownParticipant(8, "b@x.org", None)},
                   by_email={"b@x.org": 8})
    found = PageIdentity(result).resolve(A, "b@x.org", None)
    assert found.participant == 7 and "already belongs to another participant" in found.conflict
