"""``--generate N``: a realistic, deliberately messy demo org from a fixed seed.

What a participant import meets in real orgs, on purpose: e-mails in mixed case, padded with
spaces, invalid or missing; phones from many countries in many formats (extensions, trunk zeros,
missing ``+``); country names and codes mixed; the same person as a Lead and as a Contact; converted
leads (whose campaign memberships then carry the Contact too); missing and opted-out consent;
records in the Recycle Bin; many records sharing one SystemModstamp (a bulk update); system updates
that moved SystemModstamp without LastModifiedDate.

Values depend only on the seed; timestamps are relative to the emulator clock at generation time so
relative SOQL dates (``LAST_N_DAYS:30``) keep meaning something. All e-mail domains are reserved
example domains and phone numbers come from fictional ranges where countries have them.
"""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from .clock import sf_datetime
from .schema import catalog as cat
from .store import Store, member_copy

FIRST = ["Ada", "Grace", "Alan", "Mary", "Chen", "Aisha", "Mateo", "Sofia", "Liam", "Yuki", "Priya", "Olu",
         "Hannah", "Jonas", "Amelie", "Lucas", "Noah", "Emma", "Mia", "Ravi", "Fatima", "Kofi", "Ingrid", "Pedro",
         "Zoe", "Lea", "Tomás", "Anaïs", "Björn", "Siobhan", "Nguyen", "Wei", "Ahmed", "Lucía", "Kenji", "Aroha",
         "Daniel", "Chloé", "Elif", "José", "Maya", "Omar", "Sara", "Tariq", "Uma", "Vera", "Yara", None]
LAST = ["Lovelace", "Hopper", "Turing", "Jackson", "Wang", "Khan", "García", "Rossi", "O'Brien", "Tanaka",
        "Patel", "Adeyemi", "Schmidt", "Müller", "Dubois", "Silva", "Smith", "Johnson", "Kowalski", "Nakamura",
        "Haddad", "Mensah", "Larsen", "Costa", "Nguyen", "van der Berg", "Fernández", "Ó Súilleabháin", "Li",
        "Yilmaz", "Kim", "Okafor", "Ivanova", "Cohen", "Sato", "Moreau", "Novak", "Singh", "Dlamini", "Walker"]
COMPANIES = ["Northwind Health", "Contoso Labs", "Fabrikam Design", "Tailspin Research", "Wide World Clinics",
             "Adventure Works", "Proseware", "Litware", "Lucerne Publishing", "Margie's Travel", "Woodgrove Bank",
             "Coho Vineyard", "Humongous Insurance", "Alpine Ski House", "Blue Yonder Airlines", "Fourth Coffee",
             "Graphic Design Institute", "Trey Research", "VanArsdel", "Wingtip Toys"]
DOMAINS = ["example.org", "example.com", "example.net", "mail.example", "test.example"]
COUNTRIES = [
    # (MailingCountry spellings, phone formats, city, state, postal code)
    (["United States", "US", "USA", "U.S."],
     ["+1 415-555-01{n2}", "(415) 555-01{n2}", "415.555.01{n2} x{n3}", "1-212-555-01{n2}", "4155550{n3}"],
     "San Francisco", "CA", "94105"),
    (["United Kingdom", "UK", "GB", "England"],
     ["+44 20 7946 0{n3}", "020 7946 0{n3}", "44 7700 900{n3}", "07700 900{n3}", "+44 (0)20 7946 0{n3}"],
     "London", None, "EC1A 1BB"),
    (["Germany", "Deutschland", "DE"],
     ["+49 30 901820{n1}", "030 901820{n1}", "0049 30 901820{n1}", "+49 (0)151 2345 6{n3}"],
     "Berlin", None, "10115"),
    (["France", "FR"], ["+33 1 42 68 53 {n2}", "01 42 68 53 {n2}", "33 6 12 34 56 {n2}"], "Paris", None, "75001"),
    (["Australia", "AU"], ["+61 491 570 {n3}", "0491 570 {n3}", "(02) 5550 1{n3}"], "Sydney", "NSW", "2000"),
    (["Japan", "JP"], ["+81 3-1234-5{n3}", "03-1234-5{n3}"], "Tokyo", None, "100-0001"),
    (["India", "IN"], ["+91 98765 43{n3}", "098765 43{n3}", "91 98765 43{n3}"], "Bengaluru", "KA", "560001"),
    (["Brazil", "Brasil", "BR"], ["+55 11 91234-5{n3}", "(11) 91234-5{n3}"], "São Paulo", "SP", "01000-000"),
    (["Canada", "CA"], ["+1 604-555-01{n2}", "604 555 01{n2} ext. {n2}"], "Vancouver", "BC", "V5K 0A1"),
]
LEAD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other", None]
LEAD_STATUS = ["Open - Not Contacted", "Working - Contacted", "Closed - Not Converted"]
INDUSTRIES = ["Healthcare", "Technology", "Finance", "Education", "Retail", "Manufacturing", None]
TIERS = cat.TIER_VALUES + [None]
CONSENT = cat.CONSENT_VALUES + [None, None]
PERSONAS = cat.PERSONA_VALUES
CAMPAIGNS = ["Usability Panel", "Beta Research Program", "Customer Advisory Board", "Diary Study",
             "Accessibility Review", "Concept Testing", "Onboarding Interviews", "Pricing Survey"]


def _fmt(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()[:19] + ".000+0000"


class _Maker:
    def __init__(self, store: Store, org: str, seed: int):
        self.store, self.org = store, org
        self.rng = random.Random(seed)
        self.now = store.clock.now()
        self.owner = store.orgs[org].users[0].id
        self.catalog = store.catalog(org)
        self.now_s = int(self.now.timestamp())
        self.bulk_stamp = _fmt(self.now_s - 3 * 86400 - 7200)
        self._compounds = {}
        self._shapes = {}

    def ids(self, obj: str, n: int) -> list[str]:
        return self.store.new_ids(self.org, self.catalog.get(obj)["keyPrefix"], n)

    def stamps(self) -> dict:
        r = self.rng
        now = self.now_s
        created = now - int(r.uniform(1, 120) * 86400) - r.randint(0, 86399)
        modified = r.randint(created, now)
        roll = r.random()
        if roll < 0.12:
            system_s = max(self.bulk_stamp, _fmt(modified))   # a bulk update: many rows share one stamp
        elif roll < 0.2:
            system_s = _fmt(min(now, modified + r.randint(1, 3600)))   # a system update after the last edit
        else:
            system_s = _fmt(modified)
        return {"CreatedDate": _fmt(created), "LastModifiedDate": _fmt(modified), "SystemModstamp": system_s}

    def base(self, rid: str, obj: str) -> dict:
        shape = self._shapes.get(obj)
        if shape is None:
            d = self.catalog.get(obj)
            bools = [f["name"] for f in d["fields"] if f["type"] == "boolean"]
            shape = self._shapes[obj] = (bools, any(f["name"] == "OwnerId" for f in d["fields"]))
        rec = {"Id": rid}
        for b in shape[0]:
            rec[b] = False
        rec.update(self.stamps())
        rec["CreatedById"] = rec["LastModifiedById"] = self.owner
        if shape[1]:
            rec["OwnerId"] = self.owner
        return rec

    def finish(self, obj: str, rec: dict) -> dict:
        compounds = self._compounds.get(obj)
        if compounds is None:
            compounds = self._compounds[obj] = [
                (c, [(comp, cat._ADDRESS_KEYS.get(comp[len(c) - len("Address"):])) for comp in comps])
                for c, comps in cat.compound_components(self.catalog.get(obj)).items()]
        for compound, comps in compounds:
            if any(rec.get(comp) is not None for comp, _ in comps):
                rec[compound] = dict(sorted((key, rec.get(comp)) for comp, key in comps if key))
        if obj in ("Lead", "Contact"):
            rec["Name"] = " ".join(x for x in (rec.get("FirstName"), rec.get("LastName")) if x)
        return {k: v for k, v in rec.items() if v is not None}

    def person(self) -> dict:
        r = self.rng
        first, last = r.choice(FIRST), r.choice(LAST)
        country = r.choice(COUNTRIES)
        return {"FirstName": first, "LastName": last, "country": country, "email": self.email(first, last),
                "phone": self.phone(country), "mobile": self.phone(country) if r.random() < 0.6 else None}

    def email(self, first, last):
        r = self.rng
        local = ".".join(x for x in (first, last) if x).lower()
        local = "".join(c for c in local if c.isascii() and (c.isalnum() or c == ".")) or "someone"
        addr = f"{local}{r.randint(1, 999) if r.random() < 0.5 else ''}@{r.choice(DOMAINS)}"
        roll = r.random()
        if roll < 0.08:
            return None
        if roll < 0.2:
            return addr.title() if r.random() < 0.5 else addr.upper()
        if roll < 0.28:
            return r.choice([" ", "  ", "\t"]) + addr + r.choice(["", " ", "  "])
        if roll < 0.34:
            return r.choice([addr.replace("@", ""), addr.split("@")[0] + "@", addr.replace("@", "@@"),
                             addr.rsplit(".", 1)[0], addr.replace(".", ",", 1)])
        return addr

    def phone(self, country):
        r = self.rng
        if r.random() < 0.1:
            return None
        fmt = r.choice(country[1])
        return fmt.format(n1=r.randint(0, 9), n2=f"{r.randint(0, 99):02d}", n3=f"{r.randint(0, 999):03d}")

    def consent(self, rec: dict):
        r = self.rng
        rec["Consent_Status__c"] = r.choice(CONSENT)
        rec["HasOptedOutOfEmail"] = r.random() < 0.1 or rec["Consent_Status__c"] in ("Opted Out", "Withdrawn")
        rec["DoNotCall"] = r.random() < 0.06
        rec["HasOptedOutOfFax"] = r.random() < 0.03
        if r.random() < 0.7:
            rec["Persona__c"] = ";".join(sorted(r.sample(PERSONAS, r.randint(1, 3)),
                                                key=PERSONAS.index))


def generate(store: Store, org: str, n: int, seed: int = 1) -> dict[str, int]:
    """About ``n`` people (Contacts + Leads) with Accounts, Campaigns and members."""
    m = _Maker(store, org, seed)
    r = m.rng
    n = max(int(n), 10)
    n_accounts = max(3, n // 20)
    n_contacts = n * 55 // 100
    n_leads = n - n_contacts

    accounts = []
    for rid in m.ids("Account", n_accounts):
        rec = m.base(rid, "Account")
        country = r.choice(COUNTRIES)
        rec.update(Name=f"{r.choice(COMPANIES)} {r.choice(['', 'Inc.', 'Ltd', 'GmbH', 'SA', 'Pty'])}".strip(),
                   Customer_Tier__c=r.choice(TIERS), Industry=r.choice(INDUSTRIES),
                   BillingCountry=r.choice(country[0]), BillingCity=country[2], Phone=m.phone(country),
                   Website=f"https://www.{r.choice(DOMAINS)}", Type=r.choice(["Customer - Direct", "Prospect", None]))
        accounts.append(m.finish("Account", rec))

    contacts, people = [], []
    for rid in m.ids("Contact", n_contacts):
        p = m.person()
        rec = m.base(rid, "Contact")
        country = p["country"]
        rec.update(FirstName=p["FirstName"], LastName=p["LastName"], Email=p["email"], Phone=p["phone"],
                   MobilePhone=p["mobile"], MailingCountry=r.choice(country[0]) if r.random() < 0.9 else None,
                   MailingCity=country[2], MailingState=country[3], MailingPostalCode=country[4],
                   LeadSource=r.choice(LEAD_SOURCES), Title=r.choice(["Designer", "Researcher", "Engineer",
                                                                      "Product Manager", "VP Product", None]),
                   AccountId=r.choice(accounts)["Id"] if r.random() < 0.8 else None)
        m.consent(rec)
        contacts.append(rec)
        people.append(p)

    leads = []
    lead_ids = m.ids("Lead", n_leads)
    converted_pairs = []
    for i, rid in enumerate(lead_ids):
        rec = m.base(rid, "Lead")
        roll = r.random()
        if roll < 0.15 and contacts:
            # the same person as a Contact: same name, e-mail in another case or padding
            c = r.choice(contacts)
            email = c.get("Email")
            if email and r.random() < 0.6:
                email = r.choice([email.strip().upper(), " " + email.strip(), email.strip().lower()])
            rec.update(FirstName=c.get("FirstName"), LastName=c["LastName"], Email=email, Phone=c.get("Phone"),
                       MobilePhone=c.get("MobilePhone"), Country=c.get("MailingCountry"), City=c.get("MailingCity"))
            if roll < 0.08:
                converted_pairs.append((rec, c))
        else:
            p = m.person()
            country = p["country"]
            rec.update(FirstName=p["FirstName"], LastName=p["LastName"], Email=p["email"], Phone=p["phone"],
                       MobilePhone=p["mobile"], Country=r.choice(country[0]) if r.random() < 0.85 else None,
                       City=country[2], State=country[3], PostalCode=country[4])
        rec.update(Company=r.choice(COMPANIES), Status=r.choice(LEAD_STATUS), LeadSource=r.choice(LEAD_SOURCES),
                   Industry=r.choice(INDUSTRIES))
        m.consent(rec)
        leads.append(rec)

    for lead, contact in converted_pairs:
        lead.update(IsConverted=True, ConvertedContactId=contact["Id"], ConvertedAccountId=contact.get("AccountId"),
                    ConvertedDate=lead["LastModifiedDate"][:10], Status="Closed - Converted")

    campaigns = []
    n_campaigns = max(2, min(20, n // 400))
    for i, rid in enumerate(m.ids("Campaign", n_campaigns)):
        rec = m.base(rid, "Campaign")
        start = (m.now - timedelta(days=r.randint(5, 200))).date()
        rec.update(Name=f"{2025 + i % 2} {CAMPAIGNS[i % len(CAMPAIGNS)]}" + (f" #{i // len(CAMPAIGNS) + 1}"
                                                                            if i >= len(CAMPAIGNS) else ""),
                   Type=r.choice(["Email", "Webinar", "Other"]), Status=r.choice(["Planned", "In Progress", "Completed"]),
                   IsActive=r.random() < 0.7, StartDate=start.isoformat(),
                   EndDate=(start + timedelta(days=r.randint(10, 90))).isoformat())
        campaigns.append(rec)

    members = []
    member_ids = iter(m.ids("CampaignMember", int(n * 0.35) + len(converted_pairs) + 10))
    converted = {id(le) for le, _ in converted_pairs}
    convert_of = {id(le): c for le, c in converted_pairs}
    chosen_leads = [le for le, _ in converted_pairs] + r.sample(leads, min(len(leads), n // 8))
    chosen_contacts = r.sample(contacts, min(len(contacts), n // 6))
    seen = set()
    for kind, people_list in (("Lead", chosen_leads), ("Contact", chosen_contacts)):
        for person in people_list:
            camp = r.choice(campaigns)
            if (camp["Id"], person["Id"]) in seen:
                continue
            seen.add((camp["Id"], person["Id"]))
            rec = m.base(next(member_ids), "CampaignMember")
            rec.update(CampaignId=camp["Id"], Status=r.choice(["Sent", "Responded"]))
            if kind == "Lead":
                rec["LeadId"] = person["Id"]
                if id(person) in converted:
                    contact = convert_of[id(person)]
                    rec["ContactId"] = contact["Id"]
                    member_copy(rec, m.finish("Contact", dict(contact)), "Contact")
                else:
                    member_copy(rec, m.finish("Lead", dict(person)), "Lead")
            else:
                rec["ContactId"] = person["Id"]
                member_copy(rec, m.finish("Contact", dict(person)), "Contact")
            members.append(rec)
    tallies = {c["Id"]: {"NumberOfLeads": 0, "NumberOfContacts": 0, "NumberOfResponses": 0} for c in campaigns}
    for x in members:
        t = tallies[x["CampaignId"]]
        t["NumberOfLeads" if x["Type"] == "Lead" else "NumberOfContacts"] += 1
        t["NumberOfResponses"] += x["Status"] == "Responded"
    for camp in campaigns:
        camp.update(tallies[camp["Id"]])

    participants = []
    rp_source = r.sample(contacts, min(len(contacts), max(1, n // 10)))
    for i, (rid, c) in enumerate(zip(m.ids("Research_Participant__c", len(rp_source)), rp_source)):
        rec = m.base(rid, "Research_Participant__c")
        rec.update(Name=" ".join(x for x in (c.get("FirstName"), c["LastName"]) if x), Email__c=c.get("Email"),
                   Phone__c=c.get("MobilePhone") or c.get("Phone"), Country__c=c.get("MailingCountry"),
                   Consent_Status__c=c.get("Consent_Status__c"), Persona__c=c.get("Persona__c"),
                   Contact__c=c["Id"], External_Id__c=f"RP-{seed:02d}-{i + 1:06d}")
        participants.append(rec)

    # the Recycle Bin: a few of everything, deleted after their last edit
    for rows in (contacts, leads, members, accounts):
        for rec in rows:
            if r.random() < 0.02 and not rec.get("IsConverted"):
                rec["IsDeleted"] = True
                rec["SystemModstamp"] = sf_datetime(m.now - timedelta(days=r.randint(0, 10), seconds=r.randint(0, 86399)))
                if rec["SystemModstamp"] < rec["LastModifiedDate"]:
                    rec["SystemModstamp"] = rec["LastModifiedDate"]

    if any(f["name"] == "IsPersonAccount" for f in m.catalog.get("Account")["fields"]):
        person_accounts(m, accounts, contacts, n, seed)

    out = {}
    for obj, rows in (("Account", accounts), ("Contact", contacts), ("Lead", leads), ("Campaign", campaigns),
                      ("CampaignMember", members), ("Research_Participant__c", participants)):
        store.bulk_insert(org, obj, [m.finish(obj, rec) for rec in rows])
        out[obj] = len(rows)
    return out


PERSON_ACCOUNT_SHARE = 0.3


def person_accounts(m: "_Maker", accounts: list[dict], contacts: list[dict], n: int, seed: int):
    """Person Account orgs: about 30% of ``n`` people more, each an Account with ``IsPersonAccount``,
    the Person* fields and ``PersonContactId``, plus the Contact behind it (``IsPersonAccount`` true,
    ``AccountId`` the person account), as Salesforce keeps them. A random stream of its own, so the
    rest of the org is the same as in an org without Person Accounts."""
    r = random.Random(f"person-accounts-{seed}")
    saved, m.rng = m.rng, r
    try:
        k = max(3, int(n * PERSON_ACCOUNT_SHARE))
        for aid, cid in zip(m.ids("Account", k), m.ids("Contact", k)):
            p = m.person()
            country = p["country"]
            acc = m.base(aid, "Account")
            con = m.base(cid, "Contact")
            con.update({key: acc[key] for key in ("CreatedDate", "LastModifiedDate", "SystemModstamp")})
            m.consent(con)
            mailing_country = r.choice(country[0]) if r.random() < 0.9 else None
            acc.update(IsPersonAccount=True, FirstName=p["FirstName"], LastName=p["LastName"],
                       Name=" ".join(x for x in (p["FirstName"], p["LastName"]) if x), PersonEmail=p["email"],
                       Phone=p["phone"], PersonMobilePhone=p["mobile"], PersonMailingCountry=mailing_country,
                       PersonMailingCity=country[2], PersonMailingState=country[3],
                       PersonMailingPostalCode=country[4], PersonHasOptedOutOfEmail=con["HasOptedOutOfEmail"],
                       PersonDoNotCall=con["DoNotCall"], PersonHasOptedOutOfFax=con["HasOptedOutOfFax"],
                       PersonContactId=cid, Customer_Tier__c=r.choice(TIERS))
            con.update(IsPersonAccount=True, FirstName=p["FirstName"], LastName=p["LastName"], Email=p["email"],
                       Phone=p["phone"], MobilePhone=p["mobile"], MailingCountry=mailing_country,
                       MailingCity=country[2], MailingState=country[3], MailingPostalCode=country[4],
                       AccountId=aid)
            accounts.append(acc)
            contacts.append(con)
    finally:
        m.rng = saved
