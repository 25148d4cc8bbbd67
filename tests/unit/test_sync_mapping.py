from sync.mapping import map_record
from sync.plan import Action, Consent, ConsentRule, Mapping, Plan

ORG = "00DDn00000Org1AAA"


def contact_plan(**kw):
    return Plan(org_id=ORG, object_name="Contact", **kw)


def test_mapping_takes_the_first_non_blank_fallback_and_records_the_source_values():
    plan = contact_plan(mapping=Mapping(company=("Account.Name",)))
    record = {"Id": "003Dn00000Nw1RaIAJ", "FirstName": " Jon ", "LastName": "Vik",
              "Email": "jon.vik@example.org", "Phone": None, "MobilePhone": "+44 7700 900123",
              "Account": {"attributes": {"type": "Account"}, "Name": "Northwind Research Co"}}
    mapped = map_record(plan, record)
    assert (mapped.first_name, mapped.phone, mapped.company) == (
        "Jon", "+44 7700 900123", "Northwind Research Co")
    assert dict(mapped.source_values) == {
        "FirstName": "Jon", "LastName": "Vik", "Email": "jon.vik@example.org",
        "MobilePhone": "+44 7700 900123", "Account.Name": "Northwind Research Co"}


def test_15_character_id_is_stored_as_18():
    mapped = map_record(contact_plan(), {"Id": "003Dn00000QxRtA", "LastName": "Tanaka"})
    assert mapped.record_id == "003Dn00000QxRtAIAV"
    assert mapped.ref.object_name == "Contact" and mapped.ref.org_id == ORG


def test_source_hash_is_stable_and_changes_with_values_and_plan():
    plan = contact_plan()
    record = {"Id": "003Dn00000QxRtAIAV", "LastName": "Tanaka", "FirstName": "Mei",
              "SystemModstamp": "2024-05-01T00:00:00.000+0000"}
    first = map_record(plan, record)
    moved = dict(record, SystemModstamp="2024-06-01T00:00:00.000+0000")
    assert map_record(plan, moved).source_hash == first.source_hash
    renamed = dict(record, FirstName="Mei-Lin")
    assert map_record(plan, renamed).source_hash != first.source_hash
    other_plan = contact_plan(filters="LastName != null")
    assert map_record(other_plan, record).source_hash != first.source_hash


def test_fingerprint_changes_with_mapping_filters_and_action_only():
    base = contact_plan()
    assert base.fingerprint == contact_plan(excluded_ids={"003Dn00000QxRtA"}).fingerprint
    assert base.fingerprint != contact_plan(mapping=Mapping(phone=("MobilePhone",))).fingerprint
    assert base.fingerprint != contact_plan(filters="Email != null").fingerprint
    assert base.fingerprint != contact_plan(action=Action.INVITE_STUDY, target_id="7").fingerprint
    assert base.fingerprint != Plan(org_id=ORG, object_name="Lead").fingerprint


def test_excluded_ids_are_normalised_to_18():
    plan = contact_plan(excluded_ids={"003Dn00000QxRtA"})
    assert plan.excluded_ids == frozenset({"003Dn00000QxRtAIAV"})


def test_consent_by_value_and_opt_out_flags():
    rule = ConsentRule(path="Consent_Status__c", opted_in_values=("Opted In", "Granted"),
                       opted_out_values=("Opted Out",), opt_out_flags=("HasOptedOutOfEmail",))
    plan = contact_plan(consent=rule)

    def consent(**fields):
        return map_record(plan, {"Id": "003Dn00000QxRtAIAV", **fields}).consent

    assert consent(Consent_Status__c=" opted in ", HasOptedOutOfEmail=False) == Consent.OPTED_IN
    assert consent(Consent_Status__c="Opted Out", HasOptedOutOfEmail=False) == Consent.OPTED_OUT
    assert consent(Consent_Status__c="Granted", HasOptedOutOfEmail=True) == Consent.OPTED_OUT
    assert consent(Consent_Status__c="Pending", HasOptedOutOfEmail=False) == Consent.UNKNOWN
    assert consent(Consent_Status__c=None, HasOptedOutOfEmail=False) == Consent.UNKNOWN
    mapped = map_record(plan, {"Id": "003Dn00000QxRtAIAV", "Consent_Status__c": "Granted",
                               "HasOptedOutOfEmail": False})
    assert mapped.consent_evidence == (("Consent_Status__c", "Granted"),
                                       ("HasOptedOutOfEmail", False))


def test_campaign_member_reads_person_fields_from_contact_else_lead():
    plan = Plan(org_id=ORG, object_name="CampaignMember")
    assert "Contact.Email" in plan.select_fields() and "Lead.Email" in plan.select_fields()
    lead_member = {"Id": "00vDn00000Mb1XzIAJ", "LeadId": "00QDn00000Ld7KQMAZ",
                   "ContactId": None, "Contact": None,
                   "Lead": {"FirstName": "Tom", "LastName": "Berg",
                            "Email": "tom.berg@example.net"}}
    mapped = map_record(plan, lead_member)
    assert (mapped.first_name, mapped.email) == ("Tom", "tom.berg@example.net")
    assert [str(r) for r in mapped.person_refs] == ["Lead 00QDn00000Ld7KQMAZ"]
    contact_member = {"Id": "00vDn00000Mb1XyIAJ", "LeadId": "00QDn00000Ld7KpMAJ",
                      "ContactId": "003Dn00000Ct1AaIAJ",
                      "Contact": {"FirstName": "Ana", "Email": "ana.ruiz@example.org"},
                      "Lead": {"FirstName": "Old", "Email": "old@example.org"}}
    mapped = map_record(plan, contact_member)
    assert mapped.first_name == "Ana"
    assert [str(r) for r in mapped.person_refs] == ["Contact 003Dn00000Ct1AaIAJ",
                                                    "Lead 00QDn00000Ld7KpMAJ"]


def test_converted_lead_names_its_contact():
    plan = Plan(org_id=ORG, object_name="Lead")
    assert {"IsConverted", "ConvertedContactId"} <= set(plan.select_fields())
    mapped = map_record(plan, {"Id": "00QDn00000Ld7KpMAJ", "IsConverted": True,
                               "ConvertedContactId": "003Dn00000Ct1AaIAJ"})
    assert mapped.person_kind == "converted_lead"
    assert [str(r) for r in mapped.person_refs] == ["Contact 003Dn00000Ct1AaIAJ"]


def test_attributes_keep_scalars_and_null_parent_is_none():
    plan = contact_plan(mapping=Mapping(attributes=(("tier", "Account.Tier__c"),
                                                    ("employees", "NumberOfEmployees"))))
    mapped = map_record(plan, {"Id": "003Dn00000QxRtAIAV", "Account": None,
                               "NumberOfEmployees": 120})
    assert mapped.attributes == (("tier", None), ("employees", 120))
