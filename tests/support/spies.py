"""Spies shared by the engine's unit tests and the sink's integration tests."""
import pytest

from sync import validate


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
