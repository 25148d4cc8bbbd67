"""Per-org schema: full sObject describes built from the recorded base describes.

Describes are held with ``{version}`` / ``{instance}`` placeholders in their URLs and rendered for
one request by :func:`render_describe`. Every field entry is a copy of a recorded field of the
same type, so it carries every attribute key a real describe has.
"""
from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path

BASE_FILE = Path(__file__).with_name("base_describes.json")

CONSENT_VALUES = ["Opted In", "Opted Out", "Pending", "Granted", "Withdrawn"]
PERSONA_VALUES = ["Designer", "Researcher", "Engineer", "Product Manager", "Executive"]
TIER_VALUES = ["Enterprise", "Mid-Market", "SMB"]
PARTICIPANT_OBJECTS = ["Research_Participant__c", "Panel_Member__c", "Customer_Profile__c", "Community_Member__c"]

# top-level describe keys of a v59 describe (the Account recording is v48 and lacks three)
_V59_EXTRA_TOP = {"associateEntityType": None, "associateParentEntity": None, "sobjectDescribeOption": "FULL"}


@lru_cache(maxsize=1)
def base() -> dict:
    return json.loads(BASE_FILE.read_text())


def _template(ftype: str) -> dict:
    t = base()["field_templates"]
    if ftype in t:
        return t[ftype]
    if ftype in ("time",):
        f = dict(t["datetime"], type="time", soapType="xsd:time", byteLength=0, length=0)
        return f
    if ftype == "long":
        return dict(t["int"], type="long", soapType="xsd:long", digits=18)
    raise KeyError(ftype)


def make_field(name: str, ftype: str, label: str | None = None, **over) -> dict:
    """A describe field entry for ``name`` of ``ftype`` with the attribute set of a real field."""
    f = copy.deepcopy(_template(ftype))
    custom = name.endswith("__c")
    f.update({
        "name": name, "label": label or label_for(name), "custom": custom, "compoundFieldName": None,
        "nameField": False, "idLookup": ftype in ("id", "email"), "externalId": False, "unique": False,
        "createable": ftype not in ("id", "address"), "updateable": ftype not in ("id", "address"),
        "calculated": False, "calculatedFormula": None, "inlineHelpText": None,
        "defaultValue": False if ftype == "boolean" else None,
        "defaultedOnCreate": ftype in ("boolean", "id"),
        "nillable": ftype not in ("boolean", "id"),
        "picklistValues": [], "referenceTo": [], "relationshipName": None,
        "permissionable": ftype not in ("id",) and not name in ("Name",),
        "restrictedPicklist": False, "dependentPicklist": False, "controllerName": None,
    })
    if ftype in ("string", "textarea", "email", "phone", "url", "picklist", "multipicklist"):
        length = over.pop("length", {"textarea": 32768 if custom else 255, "email": 80, "phone": 40,
                                     "picklist": 255, "multipicklist": 4099}.get(ftype, 255))
        f["length"] = length
        f["byteLength"] = length * 3
        if ftype == "textarea" and length > 255:
            f.update(filterable=False, groupable=False, sortable=False, extraTypeInfo="plaintextarea")
    if ftype == "reference":
        f["length"] = 18
        f["byteLength"] = 18
    f.update(over)
    return f


def picklist_values(values, default=None) -> list:
    return [{"active": True, "defaultValue": v == default, "label": v, "validFor": None, "value": v}
            for v in values]


def label_for(name: str) -> str:
    stem = re.sub(r"__[cr]$", "", name)
    stem = re.sub(r"Id$", " ID", stem) if not name.endswith("__c") else stem
    stem = stem.replace("_", " ")
    stem = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", stem)
    return re.sub(r"\s+", " ", stem).strip() or name


def plural(label: str) -> str:
    if label.endswith("y") and not label.endswith(("ay", "ey", "oy")):
        return label[:-1] + "ies"
    if label.endswith(("s", "x", "ch", "sh")):
        return label + "es"
    return label + "s"


def relationship_name(field_name: str) -> str | None:
    if field_name.endswith("__c"):
        return field_name[:-3] + "__r"
    if field_name.endswith("Id") and len(field_name) > 2:
        return field_name[:-2]
    return None


def reference_field(name: str, targets: list[str], label=None, rel=None, **over) -> dict:
    return make_field(name, "reference", label, referenceTo=list(targets),
                      relationshipName=rel if rel is not None else relationship_name(name),
                      polymorphicForeignKey=len(targets) > 1, **over)


def _lead_field(name: str) -> dict:
    return copy.deepcopy(next(f for f in base()["describes"]["Lead"]["fields"] if f["name"] == name))


def system_fields(label: str, *, owner: bool = True) -> list[dict]:
    """Id, OwnerId, IsDeleted and the audit fields of every object (copied from the Lead recording)."""
    out = [dict(_lead_field("Id"), label=f"{label} ID"), _lead_field("IsDeleted")]
    if owner:
        out.append(_lead_field("OwnerId"))
    for n in ("CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"):
        out.append(_lead_field(n))
    return out


def child_relationship(child: str, field: str, rel: str | None, cascade=False) -> dict:
    return {"cascadeDelete": cascade, "childSObject": child, "deprecatedAndHidden": False, "field": field,
            "junctionIdListNames": [], "junctionReferenceTo": [], "relationshipName": rel,
            "restrictedDelete": False}


def _object_urls(name: str, custom: bool) -> dict:
    u = {
        "compactLayouts": f"/services/data/v{{version}}/sobjects/{name}/describe/compactLayouts",
        "rowTemplate": f"/services/data/v{{version}}/sobjects/{name}/{{ID}}",
        "approvalLayouts": f"/services/data/v{{version}}/sobjects/{name}/describe/approvalLayouts",
        "uiDetailTemplate": "{instance}/{ID}",
        "uiEditTemplate": "{instance}/{ID}/e",
        "defaultValues": f"/services/data/v{{version}}/sobjects/{name}/defaultValues?recordTypeId&fields",
        "describe": f"/services/data/v{{version}}/sobjects/{name}/describe",
        "uiNewRecord": "{instance}/{prefix}/e",
        "quickActions": f"/services/data/v{{version}}/sobjects/{name}/quickActions",
        "layouts": f"/services/data/v{{version}}/sobjects/{name}/describe/layouts",
        "sobject": f"/services/data/v{{version}}/sobjects/{name}",
    }
    if not custom:
        u["listviews"] = f"/services/data/v{{version}}/sobjects/{name}/listviews"
    return u


def new_object(name: str, key_prefix: str, label: str | None = None, *, fields=(), owner=True,
               global_entry: dict | None = None) -> dict:
    """A describe with the top-level shape of the recorded Lead describe."""
    custom = name.endswith("__c")
    label = label or label_for(name)
    lead = base()["describes"]["Lead"]
    d = {k: copy.deepcopy(v) for k, v in lead.items() if k not in ("fields", "childRelationships")}
    d.update({
        "actionOverrides": [], "activateable": False, "compactLayoutable": True, "createable": True,
        "custom": custom, "customSetting": False, "deepCloneable": False, "deletable": True,
        "feedEnabled": False, "keyPrefix": key_prefix, "label": label, "labelPlural": plural(label),
        "layoutable": True, "mergeable": False, "mruEnabled": custom, "name": name, "queryable": True,
        "replicateable": True, "retrieveable": True, "searchable": True, "triggerable": True,
        "undeletable": True, "updateable": True, "supportedScopes": [
            {"label": "All " + plural(label).lower(), "name": "everything"}],
        "recordTypeInfos": [{"active": True, "available": True, "defaultRecordTypeMapping": True,
                             "developerName": "Master", "master": True, "name": "Master",
                             "recordTypeId": "012000000000000AAA",
                             "urls": {"layout": f"/services/data/v{{version}}/sobjects/{name}/describe/layouts/012000000000000AAA"}}],
        "urls": _object_urls(name, custom),
    })
    if global_entry:
        for k, v in global_entry.items():
            if k in d and k != "urls":
                d[k] = copy.deepcopy(v)
    sysf = system_fields(label, owner=owner)
    # Id and IsDeleted first, then (for custom objects) Name, then the object's own fields, audit last
    head, audit = sysf[:3] if owner else sysf[:2], sysf[3:] if owner else sysf[2:]
    d["fields"] = head + list(fields) + audit
    d["childRelationships"] = []
    return d


def name_field(label="Name", length=80) -> dict:
    return make_field("Name", "string", label, nameField=True, length=length, defaultedOnCreate=False,
                      nillable=False if length != 80 else True, idLookup=True, permissionable=False)


def _replace_or_append(fields: list, new: dict, after: str | None = None):
    for i, f in enumerate(fields):
        if f["name"] == new["name"]:
            fields[i] = new
            return
    if after:
        for i, f in enumerate(fields):
            if f["name"] == after:
                fields.insert(i + 1, new)
                return
    # before the audit fields, which real describes list after the object's own fields
    for i, f in enumerate(fields):
        if f["name"] == "CreatedDate":
            fields.insert(i, new)
            return
    fields.append(new)


def _consent_booleans(prefix_from_person=True) -> list[dict]:
    pa = base()["describes"]["PersonAccount"]["fields"]
    out = []
    for person, name in (("PersonHasOptedOutOfEmail", "HasOptedOutOfEmail"),
                         ("PersonHasOptedOutOfFax", "HasOptedOutOfFax"), ("PersonDoNotCall", "DoNotCall")):
        f = copy.deepcopy(next(x for x in pa if x["name"] == person))
        f["name"] = name
        out.append(f)
    return out


def _participant_fields() -> list[dict]:
    return [
        make_field("Consent_Status__c", "picklist", "Consent Status",
                   picklistValues=picklist_values(CONSENT_VALUES)),
        make_field("Persona__c", "multipicklist", "Persona", picklistValues=picklist_values(PERSONA_VALUES),
                   groupable=False, sortable=False),
    ]


def _top_level_v59(d: dict) -> dict:
    for k, v in _V59_EXTRA_TOP.items():
        d.setdefault(k, v)
    return dict(sorted(d.items()))


def standard_describes(person_accounts: bool = False) -> dict[str, dict]:
    b = base()
    out = {}

    lead = copy.deepcopy(b["describes"]["Lead"])
    for f in _consent_booleans():
        _replace_or_append(lead["fields"], f, after="Email")
    for f in _participant_fields():
        _replace_or_append(lead["fields"], f)
    out["Lead"] = lead

    contact = copy.deepcopy(b["describes"]["Contact"])
    for f in _consent_booleans():
        _replace_or_append(contact["fields"], f, after="Email")
    for f in _participant_fields():
        _replace_or_append(contact["fields"], f)
    if person_accounts:
        pa_flag = copy.deepcopy(next(x for x in b["describes"]["PersonAccount"]["fields"]
                                     if x["name"] == "IsPersonAccount"))
        _replace_or_append(contact["fields"], pa_flag, after="Name")
    out["Contact"] = contact

    account = copy.deepcopy(b["describes"]["PersonAccount" if person_accounts else "Account"])
    account = _top_level_v59(account)
    if person_accounts:
        # managed-package fields of the recording org are not part of this emulated org
        account["fields"] = [f for f in account["fields"] if f["name"].count("__") < 2]
    _replace_or_append(account["fields"], make_field(
        "Customer_Tier__c", "picklist", "Customer Tier", picklistValues=picklist_values(TIER_VALUES)))
    out["Account"] = account

    out["CampaignMember"] = copy.deepcopy(b["describes"]["CampaignMember"])

    ge = b["global_entries"]
    campaign = new_object("Campaign", "701", "Campaign", global_entry=ge.get("Campaign"), fields=[
        name_field("Name", 80),
        reference_field("ParentId", ["Campaign"], "Parent Campaign", "Parent"),
        make_field("Type", "picklist", picklistValues=picklist_values(
            ["Conference", "Webinar", "Trade Show", "Public Relations", "Partners", "Referral Program",
             "Advertisement", "Banner Ads", "Direct Mail", "Email", "Telemarketing", "Other"])),
        make_field("Status", "picklist", picklistValues=picklist_values(
            ["Planned", "In Progress", "Completed", "Aborted"], default="Planned")),
        make_field("StartDate", "date", "Start Date"), make_field("EndDate", "date", "End Date"),
        make_field("IsActive", "boolean", "Active"),
        make_field("Description", "textarea", length=32000),
        make_field("NumberOfLeads", "int", "Leads in Campaign", createable=False, updateable=False,
                   defaultedOnCreate=True, nillable=False),
        make_field("NumberOfContacts", "int", "Contacts in Campaign", createable=False, updateable=False,
                   defaultedOnCreate=True, nillable=False),
        make_field("NumberOfResponses", "int", "Responses in Campaign", createable=False, updateable=False,
                   defaultedOnCreate=True, nillable=False),
    ])
    campaign["childRelationships"] = [child_relationship("CampaignMember", "CampaignId", "CampaignMembers", True),
                                      child_relationship("Campaign", "ParentId", "ChildCampaigns")]
    out["Campaign"] = campaign

    user = new_object("User", "005", "User", owner=False, global_entry=ge.get("User"), fields=[
        make_field("Username", "string", length=80, nillable=False, unique=True, idLookup=True),
        make_field("LastName", "string", "Last Name", length=80, nillable=False),
        make_field("FirstName", "string", "First Name", length=40),
        make_field("Name", "string", "Full Name", length=121, nameField=True, createable=False,
                   updateable=False),
        make_field("CompanyName", "string", "Company Name", length=80),
        make_field("Email", "email", length=128, nillable=False),
        make_field("Phone", "phone"), make_field("MobilePhone", "phone", "Mobile"),
        make_field("Alias", "string", length=8, nillable=False),
        make_field("IsActive", "boolean", "Active"),
        make_field("TimeZoneSidKey", "picklist", "Time Zone", picklistValues=picklist_values(
            ["America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin", "UTC"])),
        make_field("UserType", "picklist", "User Type", createable=False, updateable=False,
                   picklistValues=picklist_values(["Standard", "PowerPartner", "CsnOnly", "Guest"])),
    ])
    out["User"] = user

    org_rec = b["organization_record"]
    org_fields = []
    for k, v in org_rec.items():
        if k == "attributes":
            continue
        if k in ("Id", "SystemModstamp", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById"):
            f = _lead_field(k)
            if k == "Id":
                f["label"] = "Organization ID"
            org_fields.append(f)
            continue
        if k == "Address":
            t = "address"
        elif isinstance(v, bool):
            t = "boolean"
        elif isinstance(v, int):
            t = "int"
        elif k in ("Latitude", "Longitude"):
            t = "double"
        elif k in ("Phone", "Fax"):
            t = "phone"
        elif k.endswith("Date"):
            t = "datetime"
        elif k == "Street":
            t = "textarea"
        else:
            t = "string"
        f = make_field(k, t, createable=False, updateable=False)
        if k in ("Street", "City", "State", "PostalCode", "Country", "Latitude", "Longitude", "GeocodeAccuracy"):
            f["compoundFieldName"] = "Address"
        org_fields.append(f)
    org = new_object("Organization", "00D", "Organization", owner=False, global_entry=ge.get("Organization"))
    # field order as in the recorded Organization record; no IsDeleted on this object
    org["fields"] = org_fields
    org.update(createable=False, deletable=False, updateable=False, undeletable=False, searchable=False)
    out["Organization"] = org

    for name in PARTICIPANT_OBJECTS:
        pass  # custom objects get org-specific key prefixes: see custom_object()
    return {k: _top_level_v59(v) for k, v in out.items()}


def custom_object(name: str, key_prefix: str, label: str | None = None, extra_fields=()) -> dict:
    """A custom object shaped after the recorded Custom__c template, with the standard fields."""
    tmpl = base()["describes"]["Custom__c"]
    label = label or label_for(name)
    d = new_object(name, key_prefix, label, fields=[name_field(f"{label} Name")] + list(extra_fields))
    for k in ("compactLayoutable", "deepCloneable", "searchLayoutable", "listviewable", "lookupLayoutable",
              "namedLayoutInfos", "networkScopeFieldName", "associateEntityType", "associateParentEntity",
              "actionOverrides"):
        d[k] = copy.deepcopy(tmpl[k])
    d.update(custom=True, customSetting=False, mergeable=False, searchable=True, triggerable=True)
    d["fields"].extend([
        _lead_field("LastViewedDate"), _lead_field("LastReferencedDate")])
    return _top_level_v59(d)


def participant_object(name: str, key_prefix: str) -> dict:
    fields = [
        make_field("Email__c", "email", "Email"),
        make_field("Phone__c", "phone", "Phone"),
        make_field("Country__c", "string", "Country", length=80),
        *_participant_fields(),
        reference_field("Contact__c", ["Contact"], "Contact", "Contact__r"),
        make_field("External_Id__c", "string", "External ID", externalId=True, idLookup=True, length=64,
                   unique=True),
    ]
    return custom_object(name, key_prefix, extra_fields=fields)


def compound_components(describe: dict) -> dict[str, list[str]]:
    """address field name -> its component field names."""
    out: dict[str, list[str]] = {}
    for f in describe["fields"]:
        if f.get("compoundFieldName"):
            out.setdefault(f["compoundFieldName"], []).append(f["name"])
    return {k: v for k, v in out.items()
            if any(x["name"] == k and x["type"] == "address" for x in describe["fields"])}


_ADDRESS_KEYS = {"Street": "street", "City": "city", "State": "state", "PostalCode": "postalCode",
                 "Country": "country", "Latitude": "latitude", "Longitude": "longitude",
                 "GeocodeAccuracy": "geocodeAccuracy", "StateCode": "stateCode", "CountryCode": "countryCode"}


def address_value(record: dict, compound: str, components: list[str]) -> dict | None:
    prefix = compound[:-len("Address")]
    value = {}
    for comp in components:
        suffix = comp[len(prefix):]
        key = _ADDRESS_KEYS.get(suffix)
        if key:
            value[key] = record.get(comp)
    if all(v is None for v in value.values()):
        return None
    return dict(sorted(value.items()))


def render(obj, version: str, instance: str, prefix: str | None = None):
    """Fill URL placeholders for one request."""
    text = json.dumps(obj)
    text = text.replace("{version}", version).replace("{instance}", instance)
    if prefix:
        text = text.replace("{prefix}", prefix)
    return json.loads(text)


GLOBAL_KEYS = ["activateable", "associateEntityType", "associateParentEntity", "createable", "custom",
               "customSetting", "deepCloneable", "deletable", "deprecatedAndHidden", "feedEnabled",
               "hasSubtypes", "isInterface", "isSubtype", "keyPrefix", "label", "labelPlural", "layoutable",
               "mergeable", "mruEnabled", "name", "queryable", "replicateable", "retrieveable", "searchable",
               "triggerable", "undeletable", "updateable", "urls"]


def global_entry(describe: dict) -> dict:
    e = {k: describe.get(k) for k in GLOBAL_KEYS}
    urls = describe.get("urls", {})
    e["urls"] = {k: v for k, v in urls.items()
                 if k in ("compactLayouts", "rowTemplate", "approvalLayouts", "listviews", "describe",
                          "quickActions", "layouts", "sobject", "defaultValues")}
    return e
