from datetime import datetime, timedelta, timezone

import pytest

from sync.cursor import (advance, choose_cursor_field, lower_bound, newest, order_by,
                         parse_datetime, resume_from, soql_literal, where_clause)

UTC = timezone.utc


def test_parses_salesforce_datetime_format_to_aware_utc():
    parsed = parse_datetime("2024-05-01T00:33:19.000+0000")
    assert parsed == datetime(2024, 5, 1, 0, 33, 19, tzinfo=UTC)
    assert parsed.tzinfo is UTC
    assert parse_datetime("2024-05-01T02:33:19+02:00") == parsed
    assert parse_datetime("2024-05-01T00:33:19Z") == parsed


@pytest.mark.parametrize("bad", ["2024-05-01", "2024-05-01T00:33:19", "yesterday", None])
def test_rejects_values_without_a_zone_or_time(bad):
    with pytest.raises(ValueError):
        parse_datetime(bad)


def test_literal_is_unquoted_utc_seconds():
    instant = datetime(2024, 5, 1, 2, 33, 19, 999000, tzinfo=timezone(timedelta(hours=2)))
    assert soql_literal(instant) == "2024-05-01T00:33:19Z"


def test_literal_refuses_naive_datetimes():
    with pytest.raises(ValueError):
        soql_literal(datetime(2024, 5, 1))


def test_lower_bound_subtracts_the_look_back_and_is_inclusive():
    cursor = datetime(2024, 5, 1, 0, 33, 19, tzinfo=UTC)
    assert lower_bound(cursor) == datetime(2024, 5, 1, 0, 28, 19, tzinfo=UTC)
    assert where_clause("SystemModstamp", cursor, timedelta(seconds=30)) == \
        "SystemModstamp >= 2024-05-01T00:32:49Z"
    assert where_clause("SystemModstamp", None) is None
    assert order_by("SystemModstamp") == "ORDER BY SystemModstamp, Id"


def test_cursor_field_prefers_systemmodstamp():
    assert choose_cursor_field(["Id", "LastModifiedDate", "SystemModstamp"]) == "SystemModstamp"
    assert choose_cursor_field(["Id", "LastModifiedDate"]) == "LastModifiedDate"
    assert choose_cursor_field(["Id"]) is None


def test_cursor_advances_only_forward():
    early = datetime(2024, 5, 1, 0, 0, tzinfo=UTC)
    late = datetime(2024, 5, 1, 0, 35, 49, tzinfo=UTC)
    assert advance(None, late) == late
    assert advance(late, early) == late
    assert advance(early, None) == early


def test_newest_reads_the_page_maximum():
    page = [{"SystemModstamp": "2024-05-01T00:00:05.000+0000"},
            {"SystemModstamp": "2024-05-01T00:00:09.000+0000"},
            {"SystemModstamp": None}]
    assert newest(page, "SystemModstamp") == datetime(2024, 5, 1, 0, 0, 9, tzinfo=UTC)
    assert newest([], "SystemModstamp") is None


def test_a_changed_plan_reads_everything_again():
    cursor = datetime(2024, 5, 1, tzinfo=UTC)
    assert resume_from(cursor, "abc", "abc") == cursor
    assert resume_from(cursor, "abc", "def") is None


def test_every_accepted_spelling_parses_to_the_instant_it_names():
    """The fast path (datetime.fromisoformat) and the explicit reading agree, and impossible dates
    still fail with the explicit reading's message."""
    import itertools
    from sync.cursor import _parse_datetime
    for date, time, fraction, offset in itertools.product(
            ["2024-02-29", "1970-01-01", "9999-12-31"], ["00:00:00", "23:59:59"],
            ["", ".0", ".5", ".123", ".123456"], ["Z", "+0000", "+00:00", "-0000", "+0530", "-08:00", "+1400"]):
        value = f"{date}T{time}{fraction}{offset}"
        sign = -1 if offset.startswith("-") else 1
        digits = offset[1:].replace(":", "") if offset != "Z" else "0000"
        shift = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        local = datetime.fromisoformat(f"{date}T{time}").replace(
            microsecond=int((fraction[1:] or "0").ljust(6, "0")))
        try:
            expected = (local - sign * shift).replace(tzinfo=UTC)
        except OverflowError:
            continue
        _parse_datetime.cache_clear()
        parsed = parse_datetime(value)
        assert parsed == expected and parsed.tzinfo is UTC, value
    for impossible in ("2023-02-29T00:00:00Z", "2024-13-01T00:00:00.000+0000", "2024-01-01T24:00:00Z"):
        with pytest.raises(ValueError):
            parse_datetime(impossible)
