"""The orgs and users one emulator serves. The user who logs in decides the org."""
from __future__ import annotations

from dataclasses import dataclass, field

from .ids import make_id, to18


@dataclass
class User:
    username: str
    password: str
    first_name: str
    last_name: str
    org_key: str
    id: str = ""
    hidden_fields: dict[str, set[str]] = field(default_factory=dict)  # object -> FLS-hidden fields
    timezone: str = "America/Los_Angeles"
    active: bool = True

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def email(self) -> str:
        return self.username

    def public(self) -> dict:
        return {"username": self.username, "password": self.password, "user_id": self.id,
                "name": self.name, "hidden_fields": {k: sorted(v) for k, v in self.hidden_fields.items()}}


@dataclass
class Org:
    key: str
    name: str
    pod: str                       # 2 characters placed after the key prefix of every id this org issues
    organization_type: str
    is_sandbox: bool = False
    api_enabled: bool = True
    person_accounts: bool = False
    instance_name: str = "NA1"
    my_domain: str = ""
    users: list[User] = field(default_factory=list)

    @property
    def id18(self) -> str:
        return make_id("00D", self.pod, 1)

    @property
    def id15(self) -> str:
        return self.id18[:15]

    def public(self) -> dict:
        return {"key": self.key, "name": self.name, "org_id": self.id18, "org_id15": self.id15,
                "organization_type": self.organization_type, "is_sandbox": self.is_sandbox,
                "api_enabled": self.api_enabled, "person_accounts": self.person_accounts,
                "users": [u.username for u in self.users]}


def default_orgs(password: str) -> list[Org]:
    """production-like, sandbox-like, Person Account, and an edition without API access."""
    orgs = [
        Org("production", "Acme Research", "5g", "Enterprise Edition", instance_name="NA211",
            my_domain="acme"),
        Org("sandbox", "Acme Research (UAT)", "7S", "Enterprise Edition", is_sandbox=True,
            instance_name="CS220", my_domain="acme--uat"),
        Org("personaccounts", "Pinecone Clinics", "8d", "Enterprise Edition", person_accounts=True,
            instance_name="NA142", my_domain="pinecone"),
        Org("noapi", "Small Shop", "4T", "Professional Edition", api_enabled=False, instance_name="NA98",
            my_domain="smallshop"),
    ]
    by_key = {o.key: o for o in orgs}
    users = [
        User("admin@acme.example", password, "Ada", "Admin", "production"),
        User("integration@acme.example", password, "Integration", "User", "production"),
        User("restricted@acme.example", password, "Rita", "Restricted", "production",
             hidden_fields={"Contact": {"Phone", "MobilePhone"}, "Lead": {"Phone", "MobilePhone"}}),
        User("admin@acme-uat.example", password, "Sam", "Sandbox", "sandbox"),
        User("admin@pinecone.example", password, "Pia", "Person", "personaccounts"),
        User("admin@smallshop.example", password, "Pat", "Professional", "noapi"),
    ]
    for org in orgs:
        n = 0
        for u in users:
            if u.org_key == org.key:
                n += 1
                u.id = make_id("005", org.pod, n)
                org.users.append(u)
    assert all(u.id for u in users) and by_key
    return orgs


def org_id18(org15_or_18: str) -> str:
    return to18(org15_or_18)
