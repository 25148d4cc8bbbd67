"""sync.parallel: a helper process validates part of each big page. The results must be exactly
what validating in process gives, a dead helper must cost nothing but speed, and small pages never
start one."""
from __future__ import annotations

import os
import signal
import time
from types import SimpleNamespace

import pytest

from sync import validate
from sync.engine import run
from sync.fakes import ListLog, PagedSource, generated_contact
from sync.memory import MemorySink
from sync.parallel import ParallelValidation
from sync.plan import ConsentRule, Mapping, Plan

ORG = "00DDn00000Org1AAA"
CONSENT = ConsentRule(path="Consent_Status__c", opted_in_values=("Granted",))

EMAILS = ["  Mixed.Case@Example.ORG ", "no-at-sign", "a@b", "ünïcode@bücher.example", None, "",
          "x" * 300 + "@example.com", "dup@example.org", "DUP@example.org", "name@localhost",
          "robert'); DROP TABLE participants;--@example.com", "ok+tag@sub.example.co.uk"]
PHONES = ["+44 20 7946 0958", "020 7946 0958", "(415) 555-2671 x12", "0049 30 901820", "12",
          None, "not a phone", "+81 3-1234-5678", "415.555.2671", "+61 2 9374 4000", ""]
COUNTRIES = ["United Kingdom", "US", "Germany", None, "Japan", "Australia", "Atlantis", "fr"]


def messy(n: int) -> dict:
    return {**generated_contact(n),
            "Email": EMAILS[n % len(EMAILS)], "Phone": PHONES[n % len(PHONES)],
            "MailingCountry": COUNTRIES[n % len(COUNTRIES)]}


def points(n: int) -> list[SimpleNamespace]:
    return [SimpleNamespace(email=EMAILS[i % len(EMAILS)], phone=PHONES[i % len(PHONES)],
                            country=COUNTRIES[i % len(COUNTRIES)]) for i in range(n)]


def test_the_helper_computes_exactly_what_the_process_would():
    records = points(300)
    with ParallelValidation(1, min_records=10) as parallel:
        got = parallel.contact_points(records, "US")
        assert parallel.pages == 1 and parallel.records == 150
    assert got == [validate.check_contact_points(r.email, r.phone, r.country, "US") for r in records]


def test_a_small_page_is_validated_in_process_and_starts_no_helper():
    parallel = ParallelValidation(1, min_records=400)
    assert parallel.contact_points(points(399), "US") is None
    assert parallel._pool is None and parallel.pages == 0


def test_no_processes_means_no_helper():
    parallel = ParallelValidation(0, min_records=1)
    assert parallel.contact_points(points(50), None) is None


def test_a_dead_helper_hands_its_share_back_and_the_run_goes_on_in_process():
    parallel = ParallelValidation(1, min_records=10)
    records = points(100)
    assert parallel.contact_points(records, "GB") is not None
    helpers = list(parallel._pool._processes)
    for pid in helpers:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    got = parallel.contact_points(records, "GB")
    # Either the pool noticed before the submit (None: everything in process) or the helper's
    # share comes back as None, to be validated in process; never a wrong result.
    mine = [validate.check_contact_points(r.email, r.phone, r.country, "GB") for r in records]
    assert got is None or all(g is None or g == m for g, m in zip(got, mine))
    assert parallel.broken and parallel._pool is None
    assert parallel.contact_points(records, "GB") is None
    parallel.close()


def _sync(records, processes):
    sink = MemorySink()
    plan = Plan(org_id=ORG, object_name="Contact", consent=CONSENT, default_region="US",
                mapping=Mapping(country=("MailingCountry",)))
    summary = run(plan, PagedSource(records, page_size=250), sink, ListLog(),
                  validation_processes=processes, parallel_min_records=20)
    return summary, sink


def test_an_import_with_the_helper_has_the_same_outcomes_as_one_without():
    records = [messy(n) for n in range(1, 601)]
    alone, alone_sink = _sync(records, 0)
    helped, helped_sink = _sync(records, 1)
    assert helped.counts == alone.counts
    assert alone.counts["imported"] > 0 and alone.counts["skipped"] > 0

    def outcomes(sink):
        return sorted((o.record_id, o.outcome, o.reason) for o in sink.outcomes)

    assert outcomes(helped_sink) == outcomes(alone_sink)

    def people(sink):
        return sorted((v.values.get("email_key") or "", v.values.get("phone_key") or "")
                      for v in sink.participants.values())

    assert people(helped_sink) == people(alone_sink)


def test_the_engine_closes_its_helper_when_the_run_ends(monkeypatch):
    closed = []
    real_close = ParallelValidation.close
    monkeypatch.setattr(ParallelValidation, "close",
                        lambda self, wait=True: closed.append(self) or real_close(self, wait))
    _sync([messy(n) for n in range(1, 60)], 1)
    assert len(closed) == 1 and closed[0]._pool is None and closed[0].pages == 1


@pytest.mark.parametrize("address", EMAILS + ["first.last@EXAMPLE.com", "a@[127.0.0.1]", "a@-bad-.com",
                                               "a@xn--bcher-kva.example", "a@例え.テスト"])
def test_remembered_domain_checks_give_email_validators_own_answer(address):
    """sync.validate remembers email-validator's domain check per domain; every answer (and
    every refusal, with its message) must be the one email-validator gives without it."""
    import importlib
    module = importlib.import_module("email_validator.validate_email")
    cached = module.validate_email_domain_name
    assert getattr(cached, "cached_by_sync", False)
    original = cached.__wrapped_check__

    def outcome():
        try:
            return ("ok", validate.normalize_email(address))
        except Exception as exc:  # noqa: BLE001
            return ("error", type(exc).__name__, str(exc))

    first, again = outcome(), outcome()
    module.validate_email_domain_name = original
    try:
        plain = outcome()
    finally:
        module.validate_email_domain_name = cached
    assert first == again == plain
