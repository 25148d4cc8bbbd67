"""Shared by the engine's unit tests and the sink's integration tests of the skip memory: the
validation spy and the records it is tried on."""
import pytest

from sync import validate
from sync.fakes import generated_contact


def contact(n, **fields):
    return {**generated_contact(n), **fields}


def skipped_set():
    """Four records skipped for different reasons and one imported."""
    return [contact(1, Email="Sam Lee <sam@example.org>"),  # invalid email, no phone
            contact(2, Email=None, Phone="12"),  # nothing valid
            contact(3, Consent_Status__c="Withdrawn"),  # opted out, valid email
            contact(4),  # imported
            contact(5, Email="nobody@", Phone="+1 201 555 0150", LastName=None)]  # missing required


@pytest.fixture
def validated(monkeypatch):
    """The record IDs ``validate.check_record`` is called for, in order."""
    calls = []
    real = validate.check_record

    def spy(mapped, *args, **kwargs):
        calls.append(mapped.record_id)
        return real(mapped, *args, **kwargs)

    monkeypatch.setattr(validate, "check_record", spy)
    return calls
