"""C19 (pure part): converted leads and lead-type campaign members resolve to one person."""
from sync.engine import run
from sync.fakes import ListLog
from sync.mapping import SourceRef
from sync.memory import MemorySink
from sync.plan import Mapping, Plan
from tests.conftest import load_case

CASE = load_case("C19")
ORG = "00DDn00000Org1AAA"


def test_c19_contact_lead_campaign_member():
    inp = CASE["input"]
    sink = MemorySink()
    contacts = run(Plan(org_id=ORG, object_name="Contact",
                        mapping=Mapping(company=("Account.Name",))),
                   [inp["contacts"]], sink, ListLog())
    leads = run(Plan(org_id=ORG, object_name="Lead", mapping=Mapping(company=("Company",))),
                [inp["leads"]], sink, ListLog())
    members = run(Plan(org_id=ORG, object_name="CampaignMember", filters="CampaignId = '701Dn00000Cmp1AIAR'"),
                  [inp["campaign_members"]], sink, ListLog())
    assert [s.status for s in (contacts, leads, members)] == ["succeeded"] * 3
    assert len(sink.participants) == CASE["expected"]["participants_total"]

    def participant(obj, record_id):
        return sink.participant_for(SourceRef(ORG, obj, record_id))

    ana = participant("Contact", "003Dn00000Ct1AaIAJ")
    tom = participant("Lead", "00QDn00000Ld7KQMAZ")
    assert participant("Lead", "00QDn00000Ld7KpMAJ").id == ana.id
    assert participant("CampaignMember", "00vDn00000Mb1XyIAJ").id == ana.id
    assert participant("CampaignMember", "00vDn00000Mb1XzIAJ").id == tom.id
    assert tom.values["first_name"] == "Tom" and tom.values["email"] == "tom.berg@example.net"
    assert ana.values["company"] == "Ruiz Design"
    converted = [o for o in sink.outcomes if o.record_id == "00QDn00000Ld7KpMAJ"][0]
    assert converted.outcome == "unchanged"
    assert converted.reason == "Converted lead; the person continues as Contact 003Dn00000Ct1AaIAJ"
    empty = [p for p in sink.participants.values()
             if not p.values.get("email") and not p.values.get("last_name")]
    assert len(empty) == CASE["expected"]["participants_with_empty_name_and_email"]
