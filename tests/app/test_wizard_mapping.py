"""Step 3, Mapping: compatible fields by type with parents one level up, fallbacks, suggested
defaults, custom attributes, consent values, and validation errors shown on their field."""
from __future__ import annotations

import re

import pytest

from core.extensions import db
from models import ImportPlan
from services import catalog
from services import plans as plan_service
from tests.app.wizard_support import emulator, make_admin, seed_connection, use_emulator, web_client
from tests.support.web import csrf_token


@pytest.fixture(scope="module")
def emu():
    with emulator() as server:
        yield server


@pytest.fixture
def setup(app, emu, monkeypatch):
    use_emulator(app, emu, monkeypatch)
    ws, user = make_admin()
    conn = seed_connection(ws, emu)
    plan = plan_service.create_draft(ws, conn, user)
    plan_service.save_object(plan, "Contact", ["Contact"])
    return ws, conn, plan, web_client(app, user, ws)


def _selected(html, name):
    block = re.search(rf'<select id="f-{name}" name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    chosen = re.search(r'<option value="([^"]*)" selected>', block)
    return chosen.group(1) if chosen else ""


def _options(html, name):
    block = re.search(rf'<select id="f-{name}" name="{name}"[^>]*>(.*?)</select>', html, re.S).group(1)
    return re.findall(r'<option value="([^"]+)"', block)


GOOD = {"first_name": "FirstName", "last_name": "LastName", "email": "Email", "phone": "Phone",
        "phone_fallback": "MobilePhone", "company": "Account.Name", "segment": "Persona__c",
        "consent": "Consent_Status__c", "consent_in": ["Opted In"], "consent_out": ["Opted Out"],
        "opt_out_flags": ["HasOptedOutOfEmail", "DoNotCall"], "external_id": "Id", "country": "MailingCountry",
        "attr_name": ["Tier", ""], "attr_path": ["Account.Customer_Tier__c", ""]}


def test_suggested_defaults_prefilled(app, setup):
    _ws, _conn, plan, client = setup
    html = client.get(f"/wizard/plans/{plan.id}/mapping").get_data(as_text=True)
    assert _selected(html, "first_name") == "FirstName" and _selected(html, "last_name") == "LastName"
    assert _selected(html, "email") == "Email"
    assert (_selected(html, "phone"), _selected(html, "phone_fallback")) == ("Phone", "MobilePhone")
    assert _selected(html, "company") == "Account.Name" and _selected(html, "external_id") == "Id"
    assert _selected(html, "consent") == "Consent_Status__c" and _selected(html, "country") == "MailingCountry"
    # The guide's words, and the consent values offered from the describe's picklist.
    for words in ("First Name", "External Source ID", "Used for deduplication and update tracking.",
                  "Used for phone-based studies and AI-moderated telephone interviews."):
        assert words in html
    assert 'name="consent_in" value="Opted In" aria-label="Opted In means opted in" checked' in html
    assert 'name="consent_out" value="Opted Out" aria-label="Opted Out means opted out" checked' in html
    assert 'name="consent_in" value="Opted Out" aria-label="Opted Out means opted in" >' in html
    assert 'name="opt_out_flags" value="HasOptedOutOfEmail"' in html and 'name="opt_out_flags" value="DoNotCall"' in html


def test_choices_fit_the_type_and_include_parents(app, setup):
    _ws, _conn, plan, client = setup
    html = client.get(f"/wizard/plans/{plan.id}/mapping").get_data(as_text=True)
    emails = _options(html, "email")
    assert emails[0] == "Email" and "Owner.Email" in emails and "LastName" in emails  # text fields too
    assert "Birthdate" not in emails and "HasOptedOutOfEmail" not in emails
    companies = _options(html, "company")
    assert "Account.Name" in companies and "MailingAddress" not in companies  # never a compound field
    assert _options(html, "external_id")[0] == "Id" and "Account.Id" not in _options(html, "external_id")
    assert "Persona__c" in _options(html, "segment")
    assert "Phone" in _options(html, "phone") and "MobilePhone" in _options(html, "phone_fallback")


def test_save_stores_the_contract_shape(app, setup):
    _ws, _conn, plan, client = setup
    response = client.post(f"/wizard/plans/{plan.id}/mapping", data={"csrf_token": csrf_token(client), **GOOD})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"/wizard/plans/{plan.id}/filters")
    db.session.expire_all()
    saved = db.session.get(ImportPlan, plan.id)
    assert saved.mapping == {
        "fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
                   "phone": ["Phone", "MobilePhone"], "company": ["Account.Name"], "segment": ["Persona__c"],
                   "consent": ["Consent_Status__c"], "external_id": ["Id"]},
        "country": ["MailingCountry"],
        "attributes": [{"name": "Tier", "path": "Account.Customer_Tier__c"}],
        "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Opted In"], "opted_out": ["Opted Out"],
                         "opt_out_flags": ["HasOptedOutOfEmail", "DoNotCall"]},
    }
    assert saved.wizard_step == "filters"
    spec = plan_service.to_spec(saved, saved_workspace(saved))
    assert spec.mapping.phone == ("Phone", "MobilePhone") and spec.mapping.company == ("Account.Name",)
    assert spec.mapping.attributes == (("Tier", "Account.Customer_Tier__c"),)
    assert spec.consent.path == "Consent_Status__c" and spec.consent.opt_out_flags == ("HasOptedOutOfEmail", "DoNotCall")
    assert spec.org_id == "00D5g0000000001EAA" and spec.cursor_field == "SystemModstamp"
    # The saved mapping comes back on the page as saved.
    html = client.get(f"/wizard/plans/{plan.id}/mapping").get_data(as_text=True)
    assert _selected(html, "segment") == "Persona__c"
    assert 'name="attr_name" value="Tier"' in html


def saved_workspace(plan):
    from models import Workspace
    return db.session.get(Workspace, plan.workspace_id)


@pytest.mark.parametrize("change,field,message", [
    ({"external_id": ""}, "external_id", "Map the External Source ID"),
    ({"email": "", "phone": "", "phone_fallback": ""}, "email", "Map an email or a phone field"),
    ({"email": "Birthdate"}, "email", "Birthdate cannot be used as Email: its type does not fit."),
    ({"company": "Nope__c"}, "company", "Nope__c is not a field of Contact."),
    ({"company": "MailingAddress"}, "company", "cannot be used as Company"),
    ({"phone": "", "phone_fallback": "MobilePhone"}, "phone_fallback", "Choose the first field before its fallback."),
    ({"email_fallback": "Email"}, "email_fallback",
     "The fallback is the same field as Email (Email): choose another field, or no fallback."),
    ({"phone_fallback": "phone"}, "phone_fallback",
     "The fallback is the same field as Phone (Phone): choose another field, or no fallback."),
    ({"consent_in": ["Maybe"]}, "consent_in", "Maybe is not a value of Consent_Status__c."),
    ({"consent_in": [], "consent_out": []}, "consent_in", "Choose which values mean opted in or opted out."),
    ({"consent_out": ["Opted In"]}, "consent_out", "A value cannot mean both opted in and opted out."),
    ({"opt_out_flags": ["IsDeleted"]}, "opt_out_flags", "IsDeleted is not an opt-out checkbox of Contact."),
    ({"attr_name": ["", ""], "attr_path": ["Account.Customer_Tier__c", ""]}, "attr_name-0", "Give the attribute a name."),
    ({"attr_name": ["Tier", "tier"], "attr_path": ["Account.Name", "Title"]}, "attr_name-1", "“tier” is used twice."),
    ({"attr_name": ["Tier"], "attr_path": ["Account.Owner.Name"]}, "attr_path-0", "Account.Owner.Name is not a field of Contact."),
])
def test_validation_errors_show_on_their_field(app, setup, change, field, message):
    _ws, _conn, plan, client = setup
    response = client.post(f"/wizard/plans/{plan.id}/mapping", data={"csrf_token": csrf_token(client),
                                                                     **{**GOOD, **change}})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'<p class="error" id="{field}-error">' in html
    error = html.split(f'<p class="error" id="{field}-error">')[1].split("</p>")[0]
    assert message in error
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).mapping == {}  # nothing saved


def test_attribute_rows_added_and_removed_without_javascript(app, setup):
    _ws, _conn, plan, client = setup
    token = csrf_token(client)
    data = {**GOOD, "attr_name": ["Tier", "Role"], "attr_path": ["Account.Customer_Tier__c", "Title"]}
    added = client.post(f"/wizard/plans/{plan.id}/mapping", data={"csrf_token": token, **data,
                                                                  "action": "add_attribute"})
    html = added.get_data(as_text=True)
    assert added.status_code == 200 and html.count('class="attribute-row"') == 3
    assert 'name="attr_name" value="Role"' in html
    removed = client.post(f"/wizard/plans/{plan.id}/mapping", data={"csrf_token": token, **data,
                                                                    "action": "remove_attribute:0"})
    html = removed.get_data(as_text=True)
    assert 'name="attr_name" value="Tier"' not in html and 'name="attr_name" value="Role"' in html
    for crafted in ("remove_attribute:-1", "remove_attribute:9", "remove_attribute:x"):
        html = client.post(f"/wizard/plans/{plan.id}/mapping", data={"csrf_token": token, **data,
                                                                     "action": crafted}).get_data(as_text=True)
        assert 'name="attr_name" value="Tier"' in html and 'name="attr_name" value="Role"' in html, crafted
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).mapping == {}  # only "save" saves
    # The same buttons work through htmx: the panel comes back.
    hx = client.post(f"/wizard/plans/{plan.id}/mapping", data={"csrf_token": token, **data, "action": "add_attribute"},
                     headers={"HX-Request": "true", "HX-Target": "wizard"})
    assert hx.status_code == 200 and "<html" not in hx.get_data(as_text=True)


def test_a_crafted_post_with_thousands_of_rows_or_huge_values_gets_a_bounded_page(app, setup):
    """Any action re-renders the rows posted: 20,000 attribute rows once made a 587 MB page. Rows
    beyond the 30 a mapping may hold are not read (and the page says so), a value longer than any
    field path is cut in what is echoed, and nothing is saved."""
    _ws, _conn, plan, client = setup
    token = csrf_token(client)
    many = {**GOOD, "attr_name": [f"A{i}" for i in range(20000)], "attr_path": ["Title"] * 20000}
    for action in ("add_attribute", "preview", "save", "remove_attribute:3"):
        response = client.post(f"/wizard/plans/{plan.id}/mapping", data={"csrf_token": token, **many,
                                                                          "action": action})
        html = response.get_data(as_text=True)
        assert len(html) < 2_000_000, (action, len(html))
        assert html.count('class="attribute-row"') <= 31, action
        assert "At most 30 custom attributes" in html, action
    huge = "X" * 1_000_000
    response = client.post(f"/wizard/plans/{plan.id}/mapping", data={"csrf_token": token, **GOOD, "email": huge,
                                                                      "attr_name": [huge], "attr_path": [huge]})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and len(html) < 200_000 and "X" * 302 not in html
    assert "Keep attribute names under 100 characters." in html
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).mapping == {}


def test_consent_values_follow_the_chosen_field(app, setup):
    _ws, _conn, plan, client = setup
    response = client.post(f"/wizard/plans/{plan.id}/mapping", data={
        "csrf_token": csrf_token(client), **GOOD, "consent": "HasOptedOutOfEmail", "consent_in": [],
        "consent_out": [], "action": "consent_values"})
    html = response.get_data(as_text=True)
    assert 'name="consent_out" value="true"' in html and 'name="consent_in" value="false"' in html
    assert 'value="Opted In"' not in html.split('id="consent-values"')[1].split("</fieldset>")[0]


def test_mapping_changes_reset_the_cursor_and_void_consent(app, setup):
    _ws, _conn, plan, client = setup
    fields = catalog.field_catalog(plan_service.plan_connection(plan), "Contact")
    assert plan_service.save_mapping(plan, GOOD, fields) == {}
    from models.types import utcnow
    plan.cursor_at = utcnow()
    plan.cursor_fingerprint = "x"
    plan.consent_confirmed_at = utcnow()
    plan.consent_confirmation_text = "I confirm"
    plan.consent_fingerprint = plan_service.consent_fingerprint(plan)
    db.session.commit()
    assert plan_service.consent_confirmed(plan)
    assert plan_service.save_mapping(plan, GOOD, fields) == {}  # the same mapping changes nothing
    assert plan.cursor_at is not None and plan_service.consent_confirmed(plan)
    assert plan_service.save_mapping(plan, {**GOOD, "company": ""}, fields) == {}
    assert plan.cursor_at is None and plan.cursor_fingerprint is None
    assert plan.consent_confirmed_at is None and plan.consent_confirmation_text is None


# --- the suggested mapping saves as offered (one click) ---------------------------------------------

def _form_as_browser_posts(html: str) -> list[tuple[str, str]]:
    """What a browser submits for the mapping form as rendered: each select's selected option
    (else its first), checked checkboxes, text and hidden inputs (buttons left out)."""
    from html.parser import HTMLParser

    class Form(HTMLParser):
        def __init__(self):
            super().__init__()
            self.fields: list[tuple[str, str]] = []
            self.select: list | None = None  # [name, multiple, options, selected]
            self.textarea: list | None = None  # [name, text]

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "select":
                self.select = [a.get("name"), "multiple" in a, [], []]
            elif tag == "option" and self.select is not None:
                self.select[2].append(a.get("value", ""))
                if "selected" in a:
                    self.select[3].append(a.get("value", ""))
            elif tag == "textarea" and a.get("name"):
                self.textarea = [a["name"], ""]
            elif tag == "input" and a.get("name"):
                kind = a.get("type", "text")
                if kind in ("checkbox", "radio"):
                    if "checked" in a:
                        self.fields.append((a["name"], a.get("value", "on")))
                elif kind not in ("submit", "button"):
                    self.fields.append((a["name"], a.get("value", "")))

        def handle_data(self, data):
            if self.textarea is not None:
                self.textarea[1] += data

        def handle_endtag(self, tag):
            if tag == "textarea" and self.textarea is not None:
                self.fields.append(tuple(self.textarea))
                self.textarea = None
            if tag == "select" and self.select is not None:
                name, multiple, options, selected = self.select
                chosen = selected if multiple else (selected[:1] or options[:1])
                self.fields += [(name, v) for v in chosen]
                self.select = None

    parser = Form()
    parser.feed(html)
    return parser.fields


def _accept_suggestions(client, plan):
    from werkzeug.datastructures import MultiDict
    html = client.get(f"/wizard/plans/{plan.id}/mapping").get_data(as_text=True)
    fields = [(k, v) for k, v in _form_as_browser_posts(html) if k != "action"]
    return client.post(f"/wizard/plans/{plan.id}/mapping", data=MultiDict(fields + [("action", "save")]))


@pytest.mark.parametrize("object_name", ["Contact", "Lead"])
def test_accepting_the_suggested_mapping_saves_in_one_click(app, setup, object_name):
    ws, conn, plan, client = setup
    if object_name != "Contact":
        plan_service.save_object(plan, object_name, [object_name])
    r = _accept_suggestions(client, plan)
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    db.session.expire_all()
    rule = db.session.get(ImportPlan, plan.id).mapping["consent_rule"]
    # the emulator's Consent_Status__c: Opted In / Opted Out / Pending / Granted / Withdrawn
    assert rule["path"] == "Consent_Status__c"
    assert rule["opted_in"] == ["Opted In", "Granted"] and rule["opted_out"] == ["Opted Out", "Withdrawn"]


def _object_with_consent_values(emu, name: str, values: list[str]) -> None:
    """A custom object in the emulator's org whose consent picklist says nothing we can read."""
    from emulator.schema import catalog as cat
    store = emu.state.store
    org = emu.users["admin@acme.example"]["org"]
    prefix = store.catalog(org).next_custom_prefix()
    describe = cat.custom_object(name, prefix, extra_fields=[
        cat.make_field("Email__c", "email", "Email"),
        cat.make_field("Consent_Status__c", "picklist", "Consent Status",
                       picklistValues=cat.picklist_values(values))])
    store.save_describe(org, describe)


@pytest.mark.parametrize("values", [["Consent given", "Consent refused", "Unknown"], ["Y", "N"]])
def test_unreadable_consent_values_leave_consent_unmapped_and_the_suggestion_saves(app, setup, emu, values):
    _ws, conn, plan, client = setup
    name = f"Volunteer{len(values)}__c"
    _object_with_consent_values(emu, name, values)
    fields = catalog.field_catalog(conn, name)
    assert "Consent_Status__c" in fields.object.capabilities.consent_fields  # it does look like consent
    suggestion = plan_service.suggested_mapping(fields)
    assert suggestion["fields"]["consent"] == [] and suggestion["consent_rule"]["path"] is None
    plan.object_name = name
    db.session.commit()
    r = _accept_suggestions(client, plan)
    assert r.status_code == 303, r.get_data(as_text=True)[:2000]
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).mapping["fields"]["consent"] == []


def test_a_consent_checkbox_is_read_by_its_name():
    from salesforce.describe import FieldCatalog, ObjectDescribe

    def catalog_with(field):
        return FieldCatalog(ObjectDescribe.from_json({"name": "Person__c", "label": "Person", "fields": [
            {"name": "Id", "label": "Record ID", "type": "id"},
            {"name": "Email__c", "label": "Email", "type": "email", "custom": True},
            dict(field, type="boolean", custom=True)]}))

    out = plan_service.suggested_mapping(catalog_with({"name": "Research_Opt_Out__c", "label": "Research Opt Out"}))
    assert out["consent_rule"]["opted_out"] == ["true"] and out["consent_rule"]["opted_in"] == []
    out = plan_service.suggested_mapping(catalog_with({"name": "Research_Consent__c", "label": "Research Consent"}))
    assert out["consent_rule"]["opted_in"] == ["true"]


# --- consent values belong to the consent field they were chosen for -----------------------------

def _post_changed(client, plan, html, changes: dict, action="save"):
    """The rendered form as a browser posts it, with some selects changed by the person."""
    from werkzeug.datastructures import MultiDict
    fields = [(k, changes.get(k, v)) for k, v in _form_as_browser_posts(html) if k != "action"]
    return client.post(f"/wizard/plans/{plan.id}/mapping", data=MultiDict(fields + [("action", action)]))


def _consent_block(html):
    return html.split('id="consent-values"')[1].split("</fieldset>")[0]


def test_consent_changed_to_free_text_drops_the_picklist_values(app, setup):
    _ws, _conn, plan, client = setup
    html = client.get(f"/wizard/plans/{plan.id}/mapping").get_data(as_text=True)
    assert 'value="Opted In" aria-label="Opted In means opted in" checked' in html  # suggested, ticked
    # The person picks a free-text field and saves straight away: the ticked picklist values
    # are posted with it, but they are Consent_Status__c's, not Title's.
    refused = _post_changed(client, plan, html, {"consent": "Title"})
    page = refused.get_data(as_text=True)
    assert refused.status_code == 422
    assert "The consent field is now Title: say which of its values mean opted in or opted out." in page
    block = _consent_block(page)
    assert "Opted In" not in block and "Granted" not in block  # not offered for Title, not kept
    assert '<textarea id="f-consent_in" name="consent_in" rows="3"></textarea>' in block
    assert 'name="consent_values_for" value="Title"' in block
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).mapping == {}  # nothing saved
    # Typed values (one per line) are what is saved, and what the form shows again.
    saved = _post_changed(client, plan, page, {"consent_in": "Yes\r\nSure", "consent_out": "No"})
    assert saved.status_code == 303, saved.get_data(as_text=True)[:3000]
    db.session.expire_all()
    rule = db.session.get(ImportPlan, plan.id).mapping["consent_rule"]
    assert (rule["path"], rule["opted_in"], rule["opted_out"]) == ("Title", ["Yes", "Sure"], ["No"])
    assert sorted(rule["opt_out_flags"]) == ["DoNotCall", "HasOptedOutOfEmail"]  # untouched
    again = client.get(f"/wizard/plans/{plan.id}/mapping").get_data(as_text=True)
    block = _consent_block(again)
    assert ">Yes\nSure</textarea>" in block and ">No</textarea>" in block
    assert 'name="consent_values_for" value="Title"' in block


def test_consent_changed_to_another_field_with_values_re_offers_its_values(app, setup):
    _ws, _conn, plan, client = setup
    html = client.get(f"/wizard/plans/{plan.id}/mapping").get_data(as_text=True)
    # "Show the values" re-offers the new field's values, suggested by their wording.
    shown = _post_changed(client, plan, html, {"consent": "HasOptedOutOfEmail"}, action="consent_values")
    page = shown.get_data(as_text=True)
    assert shown.status_code == 200 and 'id="consent_in-error"' not in page
    block = _consent_block(page)
    assert "Opted In" not in block
    assert 'name="consent_out" value="true" aria-label="true means opted out" checked' in block
    assert 'name="consent_in" value="true" aria-label="true means opted in" >' in block
    assert 'name="consent_values_for" value="HasOptedOutOfEmail"' in block
    # Saving straight after changing the field is refused with the same values re-offered.
    refused = _post_changed(client, plan, html, {"consent": "HasOptedOutOfEmail"})
    assert refused.status_code == 422
    refused_page = refused.get_data(as_text=True)
    assert "The consent field is now HasOptedOutOfEmail: say which of its values mean opted in or opted out." \
        in refused_page
    assert _consent_block(refused_page).split("</table>")[0] == block.split("</table>")[0]
    db.session.expire_all()
    assert db.session.get(ImportPlan, plan.id).mapping == {}
    # The re-offered form, accepted as shown, saves the new field's values only.
    saved = _post_changed(client, plan, page, {})
    assert saved.status_code == 303, saved.get_data(as_text=True)[:3000]
    db.session.expire_all()
    rule = db.session.get(ImportPlan, plan.id).mapping["consent_rule"]
    assert (rule["path"], rule["opted_in"], rule["opted_out"]) == ("HasOptedOutOfEmail", [], ["true"])
