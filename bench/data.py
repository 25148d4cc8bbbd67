"""The benchmarks' data: messy Contacts in nine countries, loaded straight into an emulator store.

Deterministic for a seed. Per Contact: an email that is mixed case (12%), padded (8%), invalid
(6%) or missing (8%), ~2% reusing an earlier person's email (the same person twice); a phone in one
of that country's formats (national, international, without ``+``, with an extension), ~10%
missing; a MailingCountry spelled as a code, a name or a local name (10% missing, so the
workspace default region applies); consent picklist and the HasOptedOutOfEmail flag; an Account
(the plan maps ``Account.Name``) for 80%. Phones draw from ranges of 10^6..10^8 numbers, so two
people rarely share one by chance. SystemModstamps are spread over the 30 days before the
emulator's clock, 12% sharing one bulk-update instant.
"""
from __future__ import annotations

import random
import sys
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from emulator.clock import sf_datetime  # noqa: E402

CONSENT = ["Opted In", "Granted", "Opted Out", "Withdrawn", "Pending", None, None]
FIRST = ["Ada", "Grace", "Alan", "Mary", "Chen", "Aisha", "Mateo", "Sofia", "Liam", "Yuki", "Priya",
         "Olu", "Hannah", "Jonas", "Amélie", "Lucas", "Zoë", "Tomás", "Björn", "Siobhan", None]
LAST = ["Lovelace", "Hopper", "Turing", "Wang", "Khan", "García", "O'Brien", "Tanaka", "Müller",
        "Dubois", "Silva", "Kowalski", "Nguyen", "van der Berg", "Ó Súilleabháin", "Okafor"]
DOMAINS = ["example.org", "example.com", "example.net", "mail.example", "test.example"]


def _d(r: random.Random, n: int) -> str:
    return "".join(str(r.randint(0, 9)) for _ in range(n))


# (MailingCountry spellings, phone makers)
COUNTRIES = [
    (["United States", "US", "USA", "U.S."], [
        lambda r: f"+1 212-{r.randint(200, 999)}-{_d(r, 4)}",
        lambda r: f"(415) {r.randint(200, 999)}-{_d(r, 4)}",
        lambda r: f"646.{r.randint(200, 999)}.{_d(r, 4)} x{r.randint(1, 999)}",
        lambda r: f"1-312-{r.randint(200, 999)}-{_d(r, 4)}"]),
    (["United Kingdom", "UK", "GB", "England"], [
        lambda r: f"+44 20 7{_d(r, 3)} {_d(r, 4)}", lambda r: f"020 7{_d(r, 3)} {_d(r, 4)}",
        lambda r: f"44 7700 9{_d(r, 5)}", lambda r: f"+44 (0)161 {_d(r, 3)} {_d(r, 4)}"]),
    (["Germany", "Deutschland", "DE"], [
        lambda r: f"+49 30 {r.randint(2, 9)}{_d(r, 7)}", lambda r: f"030 {r.randint(2, 9)}{_d(r, 7)}",
        lambda r: f"0049 151 {_d(r, 8)}", lambda r: f"+49 (0)89 {r.randint(2, 9)}{_d(r, 6)}"]),
    (["France", "FR"], [
        lambda r: f"+33 1 {_d(r, 2)} {_d(r, 2)} {_d(r, 2)} {_d(r, 2)}",
        lambda r: f"06 {_d(r, 2)} {_d(r, 2)} {_d(r, 2)} {_d(r, 2)}",
        lambda r: f"33 6 {_d(r, 2)} {_d(r, 2)} {_d(r, 2)} {_d(r, 2)}"]),
    (["Australia", "AU"], [
        lambda r: f"+61 4{_d(r, 2)} {_d(r, 3)} {_d(r, 3)}", lambda r: f"(02) 9{_d(r, 3)} {_d(r, 4)}"]),
    (["Japan", "JP"], [lambda r: f"+81 3-{_d(r, 4)}-{_d(r, 4)}", lambda r: f"090-{_d(r, 4)}-{_d(r, 4)}"]),
    (["India", "IN"], [lambda r: f"+91 98{_d(r, 3)} {_d(r, 5)}", lambda r: f"098{_d(r, 3)} {_d(r, 5)}"]),
    (["Brazil", "Brasil", "BR"], [
        lambda r: f"+55 11 9{_d(r, 4)}-{_d(r, 4)}", lambda r: f"(21) 9{_d(r, 4)}-{_d(r, 4)}"]),
    (["Canada", "CA"], [lambda r: f"+1 604-{r.randint(200, 999)}-{_d(r, 4)}",
                        lambda r: f"604 {r.randint(200, 999)} {_d(r, 4)} ext. {_d(r, 2)}"]),
]


def _email(r: random.Random, i: int, first, last, earlier: list[str]) -> str | None:
    if earlier and r.random() < 0.02:
        return r.choice(earlier)  # the same person twice
    local = ".".join(x for x in (first, last) if x).lower()
    local = "".join(c for c in local if c.isascii() and (c.isalnum() or c == ".")) or "someone"
    addr = f"{local}.{i}@{r.choice(DOMAINS)}"
    if len(earlier) < 5000:
        earlier.append(addr)
    roll = r.random()
    if roll < 0.08:
        return None
    if roll < 0.2:
        return addr.title() if r.random() < 0.5 else addr.upper()
    if roll < 0.28:
        return r.choice([" ", "  ", "\t"]) + addr + r.choice(["", " ", "  "])
    if roll < 0.34:
        return r.choice([addr.replace("@", ""), addr.split("@")[0] + "@", addr.replace("@", "@@"),
                         addr.rsplit(".", 1)[0] + ".", addr.replace(".", ",", 1)])
    return addr


def contacts(n: int, *, now, owner: str, ids: list[str], account_ids: list[str], seed: int = 7):
    """Yield ``n`` stored Contact records (fully formed, as bulk_insert wants them)."""
    r = random.Random(seed)
    bulk = sf_datetime(now - timedelta(days=3, hours=2))
    earlier: list[str] = []
    for i, rid in enumerate(ids):
        first, last = r.choice(FIRST), r.choice(LAST)
        spellings, phones = r.choice(COUNTRIES)
        country = r.choice(spellings) if r.random() < 0.9 else None
        stamp = bulk if r.random() < 0.12 else sf_datetime(
            now - timedelta(days=30) + timedelta(seconds=(i * 25.9) % (29 * 86400)))
        consent = r.choice(CONSENT)
        rec = {"Id": rid, "IsDeleted": False, "FirstName": first, "LastName": last or "Unknown",
               "Name": " ".join(x for x in (first, last or "Unknown") if x),
               "Email": _email(r, i, first, last, earlier),
               "Phone": r.choice(phones)(r) if r.random() < 0.9 else None,
               "MobilePhone": r.choice(phones)(r) if r.random() < 0.3 else None,
               "MailingCountry": country, "Consent_Status__c": consent,
               "HasOptedOutOfEmail": r.random() < 0.05 or consent in ("Opted Out", "Withdrawn"),
               "DoNotCall": False, "HasOptedOutOfFax": False, "IsEmailBounced": False,
               "AccountId": r.choice(account_ids) if account_ids and r.random() < 0.8 else None,
               "CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp,
               "CreatedById": owner, "LastModifiedById": owner, "OwnerId": owner}
        yield {k: v for k, v in rec.items() if v is not None}


def fill(server, n: int, seed: int = 7, chunk: int = 50_000) -> None:
    """Load ``n`` messy Contacts (and a few hundred Accounts) into the emulator's production org."""
    store = server.state.store
    owner = server.users["admin@acme.example"]["user_id"]
    now = server.admin.now()
    stamp = sf_datetime(now - timedelta(days=40))
    n_accounts = min(500, max(5, n // 100))
    account_ids = store.new_ids("production", "001", n_accounts)
    store.bulk_insert("production", "Account", [
        {"Id": aid, "IsDeleted": False, "Name": f"Company {k}", "CreatedDate": stamp,
         "LastModifiedDate": stamp, "SystemModstamp": stamp, "CreatedById": owner,
         "LastModifiedById": owner, "OwnerId": owner} for k, aid in enumerate(account_ids)])
    ids = store.new_ids("production", "003", n)
    batch = []
    for rec in contacts(n, now=now, owner=owner, ids=ids, account_ids=account_ids, seed=seed):
        batch.append(rec)
        if len(batch) >= chunk:
            store.bulk_insert("production", "Contact", batch)
            batch = []
    if batch:
        store.bulk_insert("production", "Contact", batch)
