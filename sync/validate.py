"""Validation of emails and phone numbers, and the dedup keys derived from them.

Rules (binding, from the real-world cases C09, C10, C12):

* Emails are trimmed and validated with email-validator without a deliverability check. Display
  names, lists, URLs, trailing dots and look-alike characters are flagged ``invalid_email`` with a
  reason; nothing is ever repaired. The stored form is NFC; the dedup key is the case-folded
  stored form. An invalid email is never stored or used as a key.
* Phones are parsed with phonenumbers in the region of the record's country, else the
  workspace's default region. E.164 is stored only when ``is_valid_number``; the extension is
  kept apart (never glued into the E.164 digits). The dedup key is E.164 plus ``;ext=N`` so two
  people behind one switchboard stay separate. Invalid numbers are flagged ``invalid_phone``,
  keep their raw value for the preview, and are never used as a key.
"""
from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import email_validator
import phonenumbers
from email_validator import EmailNotValidError, validate_email

INVALID_EMAIL = "invalid_email"
INVALID_PHONE = "invalid_phone"
MISSING_REQUIRED = "missing_required"
NO_CONTACT_POINT = "no_contact_point"

# The validators whose verdicts a remembered skip relies on (``sync.engine.SKIP_RULES``): after an
# upgrade (a phonenumbers metadata update can make a number valid) remembered skips are
# validated again.
VALIDATORS = (f"email-validator {email_validator.__version__}; "
              f"phonenumbers {phonenumbers.__version__}")


@dataclass(frozen=True)
class Flag:
    """A problem with one field of one record, shown to the researcher."""

    code: str  # invalid_email, invalid_phone, missing_required, no_contact_point
    field: str  # participant field: email, phone, last_name ...
    raw: str | None  # the value as Salesforce had it (shown in the preview, never "repaired")
    reason: str  # human text


@dataclass(frozen=True)
class EmailResult:
    raw: str | None
    email: str | None = None  # normalized NFC address; None when missing or invalid
    flag: Flag | None = None

    @cached_property
    def key(self) -> str | None:
        """Dedup key: the case-folded normalized address (None unless valid)."""
        return email_key(self.email) if self.email else None

    @property
    def valid(self) -> bool:
        return self.email is not None


@dataclass(frozen=True)
class PhoneResult:
    raw: str | None
    e164: str | None = None  # only when phonenumbers says the number is valid
    extension: str | None = None
    region: str | None = None  # the region the number was parsed in
    flag: Flag | None = None

    @cached_property
    def key(self) -> str | None:
        """Dedup key: E.164, plus ``;ext=N`` when there is an extension (None unless valid)."""
        return phone_key(self.e164, self.extension) if self.e164 else None

    @property
    def valid(self) -> bool:
        return self.e164 is not None


def _cache_domain_validation() -> None:
    """Remember email-validator's check of each domain part (pure: the domain text and two
    flags in, the normalized domain out; invalid domains raise and are checked every time).
    Addresses are all different but their domains are a few hundred per import, and the domain
    check was half of validate_email. email-validator itself does all the validating."""
    import importlib

    # The package's ``validate_email`` attribute is the function; the module is this one.
    module = importlib.import_module("email_validator.validate_email")
    check = getattr(module, "validate_email_domain_name", None)
    if check is None or getattr(check, "cached_by_sync", False):
        return

    @lru_cache(maxsize=4096)
    def checked(domain: str, test_environment: bool, globally_deliverable: bool):
        return check(domain, test_environment=test_environment,
                     globally_deliverable=globally_deliverable)

    def validate_email_domain_name(domain, test_environment=False, globally_deliverable=True):
        if type(domain) is not str:
            return check(domain, test_environment=test_environment,
                         globally_deliverable=globally_deliverable)
        return dict(checked(domain, bool(test_environment), bool(globally_deliverable)))

    validate_email_domain_name.cached_by_sync = True
    validate_email_domain_name.__wrapped_check__ = check  # for the test comparing the two
    module.validate_email_domain_name = validate_email_domain_name


_cache_domain_validation()


def email_key(normalized: str) -> str:
    return unicodedata.normalize("NFC", normalized).casefold()


def phone_key(e164: str, extension: str | None = None) -> str:
    return f"{e164};ext={extension}" if extension else e164


def normalize_email(raw: object) -> EmailResult:
    """Validate one email value. Blank input is missing (no flag), not invalid."""
    if raw is None:
        return EmailResult(None)
    text = str(raw)
    trimmed = text.strip()
    if not trimmed:
        return EmailResult(text)

    def invalid(reason: str) -> EmailResult:
        return EmailResult(text, flag=Flag(INVALID_EMAIL, "email", text, reason))

    nfc = unicodedata.normalize("NFC", trimmed)
    if unicodedata.normalize("NFKC", nfc) != nfc:
        # Full-width letters, ligatures, U+037E (looks like ';') ...: normalising them would
        # turn the address into a different one, and we never repair.
        return invalid("The email address contains look-alike characters.")
    try:
        result = validate_email(trimmed, check_deliverability=False)
    except EmailNotValidError as exc:
        return invalid(str(exc))
    return EmailResult(text, email=unicodedata.normalize("NFC", result.normalized))


# Country values seen in CRMs that are not ISO 3166 alpha-2 codes or country names known to
# phonenumbers' locale data.
_COUNTRY_ALIASES = {
    "uk": "GB", "u.k.": "GB", "great britain": "GB", "britain": "GB", "england": "GB",
    "scotland": "GB", "wales": "GB", "northern ireland": "GB",
    "usa": "US", "u.s.": "US", "u.s.a.": "US", "united states of america": "US", "america": "US",
    "gbr": "GB", "deu": "DE", "fra": "FR", "esp": "ES", "ita": "IT", "nld": "NL", "bel": "BE",
    "che": "CH", "aut": "AT", "irl": "IE", "can": "CA", "aus": "AU", "nzl": "NZ", "swe": "SE",
    "nor": "NO", "dnk": "DK", "fin": "FI", "pol": "PL", "prt": "PT", "jpn": "JP", "ind": "IN",
    "bra": "BR", "mex": "MX", "zaf": "ZA", "sgp": "SG", "chn": "CN",
    "holland": "NL", "the netherlands": "NL", "czech republic": "CZ",
}


COUNTRY_NAMES_FILE = Path(__file__).with_name("country_names.json")


@lru_cache(maxsize=1)
def _country_names() -> dict[str, str]:
    # phonenumbers' locale table costs ~100 MB of memory and a second to load, for ~3,600 names:
    # a worker reads them from the file build_country_names() wrote (a unit test keeps the two
    # equal when phonenumbers is upgraded).
    try:
        stored = json.loads(COUNTRY_NAMES_FILE.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return build_country_names()
    if stored.get("phonenumbers") != phonenumbers.__version__:
        return build_country_names()
    return stored["names"]


def build_country_names() -> dict[str, str]:
    """Folded country name -> region, in every language phonenumbers ships ("Deutschland",
    "Royaume-Uni"); ``python -m sync.validate`` writes them to country_names.json."""
    from phonenumbers.geodata.locale import LOCALE_DATA

    # entries "*xx" refer to the name given for language xx.
    names: dict[str, str] = {}
    for region, by_language in LOCALE_DATA.items():
        for name in by_language.values():
            if name.startswith("*"):
                name = by_language.get(name[1:], "")
            if name:
                names.setdefault(name.casefold(), region)
    return names


def region_for_country(country: object) -> str | None:
    """The phonenumbers region for a country value (ISO code or name), or None if unknown."""
    if country is None:
        return None
    if isinstance(country, str):
        return _region_for_text(country)  # a handful of spellings repeat across a whole import
    return _region_for_text.__wrapped__(str(country))


@lru_cache(maxsize=4096)
def _region_for_text(country: str) -> str | None:
    text = " ".join(str(country).split())
    if not text:
        return None
    if len(text) == 2 and text.upper() in phonenumbers.SUPPORTED_REGIONS:
        return text.upper()
    folded = text.casefold()
    return _COUNTRY_ALIASES.get(folded) or _country_names().get(folded)


def phone_region(country: object, default_region: str | None) -> str | None:
    """The record's country region when recognised, else the workspace default."""
    return region_for_country(country) or (default_region.upper() if default_region else None)


def normalize_phone(raw: object, region: str | None) -> PhoneResult:
    """Parse one phone value in ``region`` (None: only ``+``-prefixed numbers can parse)."""
    if raw is None:
        return PhoneResult(None)
    text = str(raw)
    if not text.strip():
        return PhoneResult(text)

    def invalid(reason: str) -> PhoneResult:
        return PhoneResult(text, region=region, flag=Flag(INVALID_PHONE, "phone", text, reason))

    if region is None and not text.strip().startswith("+"):
        return invalid("The phone number needs a country code: the record has no country and "
                       "no default region is set.")
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        return invalid(_parse_error_reason(exc))
    if not phonenumbers.is_valid_number(number):
        where = f" for {region}" if region and not text.strip().startswith("+") else ""
        if phonenumbers.is_possible_number(number):
            return invalid(f"The phone number is not a valid number{where}.")
        return invalid(f"The phone number is not a possible number{where}.")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return PhoneResult(text, e164=e164, extension=number.extension or None, region=region)


def _parse_error_reason(exc: phonenumbers.NumberParseException) -> str:
    kind = exc.error_type
    if kind == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
        return "The phone number has an unrecognised or missing country code."
    if kind == phonenumbers.NumberParseException.NOT_A_NUMBER:
        return "The value is not a phone number."
    if kind == phonenumbers.NumberParseException.TOO_SHORT_NSN or \
            kind == phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD:
        return "The phone number is too short."
    if kind == phonenumbers.NumberParseException.TOO_LONG:
        return "The phone number is too long."
    return f"The phone number could not be read ({exc})."


@dataclass(frozen=True)
class CheckedRecord:
    """The validation of one mapped record: normalized email and phone plus every flag."""

    email: EmailResult
    phone: PhoneResult
    flags: tuple[Flag, ...]

    @property
    def contactable(self) -> bool:
        return self.email.valid or self.phone.valid

    @property
    def missing_required(self) -> tuple[Flag, ...]:
        return tuple(f for f in self.flags if f.code == MISSING_REQUIRED)


def check_contact_points(email: object, phone: object, country: object,
                         default_region: str | None) -> tuple[EmailResult, PhoneResult]:
    """The expensive part of ``check_record``: the email, and the phone in the country's region
    (else ``default_region``). Pure, so it may run in a helper process (``sync.parallel``)."""
    return normalize_email(email), normalize_phone(phone, phone_region(country, default_region))


def check_record(mapped, required: tuple[str, ...], default_region: str | None,
                 contact_points: tuple[EmailResult, PhoneResult] | None = None) -> CheckedRecord:
    """Validate a ``sync.mapping.MappedRecord``: email, phone (in the record's country region,
    else ``default_region``), required fields and having at least one usable contact point.
    ``contact_points``: ``check_contact_points`` of the record, when already computed."""
    email, phone = contact_points or check_contact_points(mapped.email, mapped.phone,
                                                          mapped.country, default_region)
    flags = [f for f in (email.flag, phone.flag) if f]
    for name in required:
        if mapped.value(name) in (None, "", ()):
            label = name.replace("_", " ")
            flags.append(Flag(MISSING_REQUIRED, name, None, f"Required field {label} is empty."))
    if not (email.valid or phone.valid):
        flags.append(Flag(NO_CONTACT_POINT, "email", mapped.email,
                          "No valid email or phone number."))
    return CheckedRecord(email, phone, tuple(flags))


if __name__ == "__main__":
    COUNTRY_NAMES_FILE.write_text(json.dumps(
        {"phonenumbers": phonenumbers.__version__, "names": build_country_names()},
        ensure_ascii=False, sort_keys=True, indent=0) + "\n", encoding="utf-8")
    print(f"wrote {COUNTRY_NAMES_FILE}")
