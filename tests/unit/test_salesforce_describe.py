"""Describe parsing, capabilities, field choices, using the recorded describes."""
import json

import pytest

from salesforce.describe import (FieldCatalog, FieldInfo, ObjectDescribe, ObjectSummary, PicklistValue,
                                 discoverable_objects, parent_objects)
from tests.conftest import shared_path


def _json(name):
    return json.loads(shared_path("fixtures", "salesforce", name).read_text())


def _describe(name):
    return ObjectDescribe.from_json(_json(f"describe-{name}.json"))


@pytest.fixture(scope="module")
def contact():
    return _describe("Contact")


@pytest.fixture(scope="module")
def account():
    return _describe("Account")


def test_field_parsing(contact):
    account_id = contact.field("AccountId")
    assert account_id.type == "reference"
    assert account_id.reference_to == ("Account",)
    assert account_id.relationship_name == "Account"
    email = contact.field("email")  # case-insensitive, like Salesforce
    assert (email.name, email.type, email.id_lookup, email.length) == ("Email", "email", True, 80)
    city = contact.field("MailingCity")
    assert city.compound_field_name == "MailingAddress"
    assert contact.field("MailingAddress").is_compound
    salutation = contact.field("Salutation")
    assert PicklistValue("Mr.", "Mr.", True, False) in salutation.picklist_values
    assert contact.field("Nope") is None
    assert contact.key_prefix == "003"


def test_contact_capabilities(contact):
    caps = contact.capabilities
    assert caps.email_fields == ("Email",)
    assert caps.phone_fields[:3] == ("Phone", "Fax", "MobilePhone")
    assert caps.source_id_fields == ("Id",)
    assert caps.last_modified_field == "SystemModstamp"
    # The recorded Contact lacks the opt-out checkboxes (hidden by field-level security).
    assert caps.consent_fields == ()
    assert not caps.has_consent


def test_standard_opt_out_checkboxes_recognised():
    person = _describe("Account-with-PersonAccounts")
    consent = person.capabilities.consent_fields
    assert {"PersonHasOptedOutOfEmail", "PersonDoNotCall", "PersonHasOptedOutOfFax"} <= set(consent)
    cm = _describe("CampaignMember.SYNTHETIC")
    assert set(cm.capabilities.consent_fields) == {"DoNotCall", "HasOptedOutOfEmail", "HasOptedOutOfFax"}


def _obj(*fields, name="Research_Participant__c"):
    return ObjectDescribe.from_json({"name": name, "label": "Participant", "custom": True,
                                     "fields": [{"name": "Id", "label": "Record ID", "type": "id"}, *fields]})


def test_consent_from_types_and_values_not_names_alone():
    obj = _obj(
        {"name": "Consent_Status__c", "label": "Consent", "type": "picklist", "custom": True,
         "picklistValues": [{"value": "Opted in"}, {"value": "Opted out"}, {"value": "Pending"}]},
        {"name": "Research_Ok__c", "label": "Research", "type": "picklist", "custom": True,
         "picklistValues": [{"value": "Granted"}, {"value": "Withdrawn"}]},
        {"name": "Newsletter_Consent__c", "label": "Newsletter consent", "type": "picklist", "custom": True,
         "picklistValues": [{"value": "Yes"}, {"value": "No"}]},
        {"name": "Is_VIP__c", "label": "VIP", "type": "picklist", "custom": True,
         "picklistValues": [{"value": "Yes"}, {"value": "No"}]},
        {"name": "Consent_Notes__c", "label": "Consent notes", "type": "string", "custom": True},
        {"name": "Marketing_Opt_In__c", "label": "Marketing opt-in", "type": "boolean", "custom": True},
        {"name": "DoNotCall", "label": "Do Not Call", "type": "string", "custom": False},
        {"name": "Tier__c", "label": "Tier", "type": "picklist", "custom": True,
         "picklistValues": [{"value": "Gold"}, {"value": "Silver"}]},
    )
    assert obj.capabilities.consent_fields == ("Consent_Status__c", "Research_Ok__c", "Newsletter_Consent__c",
                                               "Marketing_Opt_In__c")


def test_source_ids_and_cursor_fallback():
    obj = _obj(
        {"name": "Participant_Number__c", "label": "No.", "type": "string", "externalId": True, "custom": True},
        {"name": "Badge__c", "label": "Badge", "type": "string", "idLookup": True, "unique": True, "custom": True},
        {"name": "Email__c", "label": "Email", "type": "email", "idLookup": True, "custom": True},
        {"name": "LastModifiedDate", "label": "Last Modified", "type": "datetime"},
    )
    caps = obj.capabilities
    assert caps.source_id_fields == ("Id", "Participant_Number__c", "Badge__c")
    assert caps.last_modified_field == "LastModifiedDate"
    assert caps.email_fields == ("Email__c",)
    assert _obj().cursor_field is None


def test_discovery_filter_and_order():
    summaries = [ObjectSummary.from_json(s) for s in _json("describe-global.json")["sobjects"]]
    summaries += [ObjectSummary.from_json(s) for s in _json("describe-global-with-custom-objects.json")["sobjects"]]
    found = discoverable_objects(summaries)
    names = [s.name for s in found]
    assert names[:4] == ["Lead", "Contact", "CampaignMember", "Account"]
    assert all(s.queryable and s.retrieveable and not s.deprecated_and_hidden for s in found)
    assert all(s.layoutable or s.custom for s in found)
    customs = [i for i, s in enumerate(found) if s.custom]
    standard_rest = [i for i, s in enumerate(found[4:], start=4) if not s.custom]
    assert customs and standard_rest and max(standard_rest) < min(customs)
    assert "UserChangeEvent" not in names  # not layoutable, not custom
    hidden = ObjectSummary("Old__c", "Old", custom=True, deprecated_and_hidden=True)
    assert discoverable_objects([hidden]) == []


def test_filter_choices_never_offer_compound_fields():
    c03 = json.loads(shared_path("cases", "C03.json").read_text())
    frag = c03["input"]["describe_fields_fragment"]
    obj = ObjectDescribe.from_json({"name": "Contact", "label": "Contact", "fields": frag})
    paths = [c.path for c in FieldCatalog(obj).filter_choices()]
    for name in c03["expected"]["filter_field_choices_exclude"]:
        assert name not in paths
    for name in c03["expected"]["filter_field_choices_include"]:
        assert name in paths


def test_recorded_contact_filter_choices(contact, account):
    catalog = FieldCatalog(contact, {"Account": account})
    paths = {c.path for c in catalog.filter_choices()}
    assert {"MailingCity", "Account.Name", "Account.Type", "Email"} <= paths
    assert not {"MailingAddress", "OtherAddress", "Account.BillingAddress", "Account.ShippingAddress"} & paths
    assert "Description" not in paths  # long text: Salesforce can't filter on it
    assert catalog.resolve("account.name").label == "Account: Account Name"


def test_parent_paths_need_parent_describe(contact, account):
    assert FieldCatalog(contact).resolve("Account.Name") is None
    assert FieldCatalog(contact, {"Account": account}).resolve("Account.Name").field.type == "string"
    parents = parent_objects(contact)
    assert parents["Account"] == ("Account",)
    assert parents["ReportsTo"] == ("Contact",)


def test_polymorphic_parent_offers_only_common_fields():
    lead = _describe("Lead")
    user = ObjectDescribe.from_json({"name": "User", "label": "User", "fields": [
        {"name": "Email", "label": "Email", "type": "email"}, {"name": "Name", "label": "Name", "type": "string"},
        {"name": "Alias", "label": "Alias", "type": "string"}]})
    group = ObjectDescribe.from_json({"name": "Group", "label": "Group", "fields": [
        {"name": "Email", "label": "Email", "type": "email"}, {"name": "Name", "label": "Name", "type": "string"}]})
    assert lead.field("OwnerId").reference_to == ("Group", "User")
    only_user = FieldCatalog(lead, {"User": user})
    assert only_user.resolve("Owner.Email") is None
    both = FieldCatalog(lead, {"User": user, "Group": group})
    assert both.resolve("Owner.Email") is not None
    assert both.resolve("Owner.Alias") is None


def test_compatible_fields_by_type(contact, account):
    catalog = FieldCatalog(contact, {"Account": account})
    email = [c.path for c in catalog.compatible_fields("email")]
    assert email[0] == "Email"
    assert all(catalog.resolve(p).field.type in ("email", "string") for p in email)
    phone = {c.path for c in catalog.compatible_fields("phone")}
    assert {"Phone", "MobilePhone", "HomePhone"} <= phone
    company = [c.path for c in catalog.compatible_fields("company")]
    assert "Account.Name" in company
    assert company.index("Account.Name") > company.index("LastName")  # own fields first
    segment_types = {catalog.resolve(c.path).field.type for c in catalog.compatible_fields("segment")}
    assert segment_types == {"picklist", "string"}
    assert [c.path for c in catalog.compatible_fields("external_id")] == ["Id"]
    assert "MailingAddress" not in {c.path for c in catalog.compatible_fields("first_name")}
    with pytest.raises(KeyError):
        catalog.compatible_fields("shoe_size")


def test_suggested_mapping_and_phone_fallback(contact, account):
    catalog = FieldCatalog(contact, {"Account": account})
    assert catalog.suggested_mapping() == {"first_name": "FirstName", "last_name": "LastName", "email": "Email",
                                           "phone": "Phone", "company": "Account.Name", "external_id": "Id"}
    assert catalog.phone_fallbacks()[:2] == ["Phone", "MobilePhone"]
    lead = FieldCatalog(_describe("Lead"))
    assert lead.suggested_mapping()["company"] == "Company"


def test_field_info_defaults_for_sparse_json():
    f = FieldInfo.from_json({"name": "X__c", "type": "string"})
    assert (f.label, f.filterable, f.custom, f.nillable) == ("X__c", True, True, True)
