"""The mapping step's logic without a database or a server: the suggested mapping for each object
the emulator's org offers (Lead, Contact, CampaignMember, Account with and without Person
Accounts, a custom participant object), a fallback that repeats its first field, and consent
values that belong to the consent field they were chosen for."""
from __future__ import annotations

import pytest

from emulator.schema import catalog as schema
from salesforce.describe import FieldCatalog, ObjectDescribe
from services import plans


def _catalog(name: str, *, person_accounts: bool = False) -> FieldCatalog:
    describes = schema.standard_describes(person_accounts=person_accounts)
    if name == "Research_Participant__c":
        describes[name] = schema.participant_object(name, "a05")
    parents = {k: ObjectDescribe.from_json(v) for k, v in describes.items()}
    return FieldCatalog(parents[name], parents)


@pytest.fixture(scope="module")
def catalogs():
    return {name: _catalog(name) for name in ("Lead", "Contact", "CampaignMember", "Account",
                                              "Research_Participant__c")} | {
        "PersonAccount": _catalog("Account", person_accounts=True)}


def _fields(catalogs, name):
    return plans.suggested_mapping(catalogs[name])["fields"]


# --- suggestions --------------------------------------------------------------------------------

def test_a_business_account_s_own_name_is_its_company(catalogs):
    fields = _fields(catalogs, "Account")
    assert fields["company"] == ["Name"]
    assert catalogs["Account"].suggested_mapping()["company"] == "Name"


def test_a_person_account_gets_the_person_fields_and_no_company(catalogs):
    mapping = plans.suggested_mapping(catalogs["PersonAccount"])
    fields = mapping["fields"]
    # a person account's Name is the person's own name, not a company
    assert fields["company"] == []
    assert (fields["first_name"], fields["last_name"], fields["email"]) == (["FirstName"], ["LastName"], ["PersonEmail"])
    assert fields["phone"] == ["Phone", "PersonMobilePhone"]
    assert mapping["consent_rule"]["opt_out_flags"] == ["PersonHasOptedOutOfEmail", "PersonDoNotCall"]
    assert mapping["country"] == ["PersonMailingCountry"]


@pytest.mark.parametrize("name", ["Lead", "Contact", "CampaignMember", "Account", "PersonAccount",
                                  "Research_Participant__c"])
def test_fax_is_never_a_suggested_phone(catalogs, name):
    catalog = catalogs[name]
    phones = _fields(catalogs, name)["phone"]
    assert phones and not any("fax" in p.lower() for p in phones)
    assert not any("fax" in p.lower() for p in catalog.phone_fallbacks())
    assert "fax" not in catalog.suggested_mapping()["phone"].lower()


@pytest.mark.parametrize("name,fallback", [("Lead", "MobilePhone"), ("Contact", "MobilePhone"),
                                           ("CampaignMember", "MobilePhone"), ("PersonAccount", "PersonMobilePhone")])
def test_the_phone_fallback_is_the_mobile(catalogs, name, fallback):
    assert _fields(catalogs, name)["phone"] == ["Phone", fallback]


def test_a_business_account_has_no_phone_fallback_rather_than_its_fax(catalogs):
    assert _fields(catalogs, "Account")["phone"] == ["Phone"]


def test_fax_is_still_offered_for_phone_but_after_every_other_phone_field(catalogs):
    paths = [c.path for c in catalogs["Contact"].compatible_fields("phone")]
    own_phones = [p for p in paths if catalogs["Contact"].resolve(p).field.type == "phone" and "." not in p]
    assert own_phones[-1] == "Fax" and own_phones[0] == "Phone"


@pytest.mark.parametrize("name,company,country", [
    ("Lead", ["Company"], ["Country"]), ("Contact", ["Account.Name"], ["MailingCountry"]),
    ("CampaignMember", ["CompanyOrAccount"], ["Country"]), ("Account", ["Name"], ["BillingCountry"]),
    ("Research_Participant__c", [], ["Country__c"])])
def test_company_and_country_per_object(catalogs, name, company, country):
    mapping = plans.suggested_mapping(catalogs[name])
    assert mapping["fields"]["company"] == company
    assert mapping["country"] == country


def test_the_custom_participant_object(catalogs):
    mapping = plans.suggested_mapping(catalogs["Research_Participant__c"])
    assert mapping["fields"]["email"] == ["Email__c"] and mapping["fields"]["phone"] == ["Phone__c"]
    assert mapping["consent_rule"]["path"] == "Consent_Status__c"
    assert mapping["consent_rule"]["opted_in"] == ["Opted In", "Granted"]


@pytest.mark.parametrize("name", ["Lead", "Contact", "CampaignMember", "Account", "PersonAccount",
                                  "Research_Participant__c"])
def test_every_suggestion_validates_as_offered(catalogs, name):
    """What the step pre-fills is a mapping the step accepts: no fallback repeats its field, every
    path fits its participant field."""
    mapping = plans.suggested_mapping(catalogs[name])
    f, rule = mapping["fields"], mapping["consent_rule"]
    data = {key: paths[0] if paths else "" for key, paths in f.items()}
    data.update(email_fallback=f["email"][1] if len(f["email"]) > 1 else "",
                phone_fallback=f["phone"][1] if len(f["phone"]) > 1 else "",
                country=mapping["country"][0] if mapping["country"] else "",
                consent_in=rule["opted_in"], consent_out=rule["opted_out"], opt_out_flags=rule["opt_out_flags"])
    saved, errors = plans.validate_mapping(data, catalogs[name])
    assert errors == {}
    assert saved == mapping


# --- a fallback that is its own first field -------------------------------------------------------

@pytest.mark.parametrize("key,first", [("email", "Email"), ("phone", "Phone")])
def test_a_fallback_cannot_be_its_first_field(catalogs, key, first):
    data = {"external_id": "Id", key: first, f"{key}_fallback": first.lower()}  # case does not hide it
    mapping, errors = plans.validate_mapping(data, catalogs["Contact"])
    assert errors == {f"{key}_fallback": f"The fallback is the same field as {key.capitalize()} ({first}): "
                                        f"choose another field, or no fallback."}


def test_a_different_fallback_is_kept(catalogs):
    mapping, errors = plans.validate_mapping({"external_id": "Id", "phone": "Phone", "phone_fallback": "MobilePhone"},
                                             catalogs["Contact"])
    assert errors == {} and mapping["fields"]["phone"] == ["Phone", "MobilePhone"]


# --- consent values belong to their field ---------------------------------------------------------

BASE = {"external_id": "Id", "email": "Email"}


def test_values_shown_for_another_consent_field_are_never_stored(catalogs):
    data = {**BASE, "consent": "Title", "consent_in": ["Opted In", "Granted"], "consent_out": ["Opted Out"],
            "consent_values_for": "Consent_Status__c"}
    mapping, errors = plans.validate_mapping(data, catalogs["Contact"])
    assert errors == {"consent_in": "The consent field is now Title: say which of its values mean opted in "
                                    "or opted out."}
    assert mapping["consent_rule"]["opted_in"] == [] and mapping["consent_rule"]["opted_out"] == []


def test_values_typed_for_the_free_text_field_itself_are_stored_one_per_line(catalogs):
    data = {**BASE, "consent": "Title", "consent_in": ["Yes\r\n  opted in \n\nYES"], "consent_out": ["No"],
            "consent_values_for": "Title"}
    mapping, errors = plans.validate_mapping(data, catalogs["Contact"])
    assert errors == {}
    assert mapping["consent_rule"] == {"path": "Title", "opted_in": ["Yes", "opted in"], "opted_out": ["No"],
                                       "opt_out_flags": []}


def test_a_free_text_consent_field_asks_for_typed_values(catalogs):
    _, errors = plans.validate_mapping({**BASE, "consent": "Title", "consent_values_for": "Title"},
                                       catalogs["Contact"])
    assert errors == {"consent_in": "Type the values of Title that mean opted in or opted out (one per line)."}
    _, errors = plans.validate_mapping({**BASE, "consent": "Title", "consent_in": ["x" * 256]}, catalogs["Contact"])
    assert errors == {"consent_in": "A value is at most 255 characters."}


def test_data_without_the_shown_field_is_taken_as_meant_for_the_field(catalogs):
    """A caller stating the values itself (no form) is not second-guessed."""
    mapping, errors = plans.validate_mapping({**BASE, "consent": "Consent_Status__c", "consent_in": ["opted in"]},
                                             catalogs["Contact"])
    assert errors == {} and mapping["consent_rule"]["opted_in"] == ["Opted In"]


def test_values_re_offered_for_the_new_field(catalogs):
    contact = catalogs["Contact"]
    # picklist -> free text: the picklist's values dropped, nothing typed yet
    assert plans.reoffered_consent_values(contact, "Title", "Consent_Status__c", ["Opted In"], ["Opted Out"]) == ([], [])
    # free text -> picklist, or picklist -> checkbox: the new field's values by their wording
    assert plans.reoffered_consent_values(contact, "Consent_Status__c", "Title", ["Yes"], ["No"]) == (
        ["Opted In", "Granted"], ["Opted Out", "Withdrawn"])
    assert plans.reoffered_consent_values(contact, "HasOptedOutOfEmail", "Consent_Status__c",
                                          ["Opted In"], []) == ([], ["true"])
    # free text -> free text: what was typed is offered again, to confirm
    assert plans.reoffered_consent_values(contact, "Department", "Title", ["Yes"], ["No"]) == (["Yes"], ["No"])
    assert plans.reoffered_consent_values(contact, None, "Title", ["Yes"], ["No"]) == ([], [])


@pytest.mark.parametrize("data,changed", [
    ({"consent_values_for": "Consent_Status__c"}, False), ({"consent_values_for": "consent_status__c"}, False),
    ({"consent_values_for": "Title"}, True), ({"consent_values_for": ""}, True), ({}, False)])
def test_consent_field_changed(data, changed):
    assert plans.consent_field_changed(data, "Consent_Status__c") is changed


@pytest.mark.parametrize("name, segment", [("Lead", ["Persona__c"]), ("Contact", ["Persona__c"]),
                                           ("Research_Participant__c", ["Persona__c"]),
                                           ("CampaignMember", []), ("Account", [])])
def test_a_field_named_for_a_segment_or_persona_is_the_suggested_segment(catalogs, name, segment):
    """Persona__c (a multi-select picklist) says what segment a person is in; an object without
    such a field gets no guess (a Customer Tier is the account's, not the person's)."""
    assert _fields(catalogs, name)["segment"] == segment
