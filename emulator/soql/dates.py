"""Relative date literals (TODAY, LAST_N_DAYS:n, ...) as [start, end) day ranges in UTC.

Salesforce ties the boundaries to the running user's time zone; the emulator's users are on
UTC, and weeks start on Sunday as in the en_US locale. The emulated orgs keep the default fiscal
year (standard, starting in January: ``Organization.FiscalYearStartMonth`` is 1), so the fiscal
literals (THIS_FISCAL_QUARTER, LAST_N_FISCAL_YEARS:n ...) cover the same days as their calendar twins.
"""
from __future__ import annotations

from datetime import date, timedelta


def _month_start(d: date, shift: int = 0) -> date:
    index = d.year * 12 + (d.month - 1) + shift
    return date(index // 12, index % 12 + 1, 1)


def _quarter_start(d: date, shift: int = 0) -> date:
    first = date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    return _month_start(first, 3 * shift)


def relative_range(name: str, n, today: date) -> tuple[date, date]:
    """The days covered by the literal: start inclusive, end exclusive."""
    if "FISCAL_" in name:
        return relative_range(name.replace("FISCAL_", ""), n, today)
    day = timedelta(days=1)
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)  # Sunday
    if name == "TODAY":
        return today, today + day
    if name == "YESTERDAY":
        return today - day, today
    if name == "TOMORROW":
        return today + day, today + 2 * day
    if name == "THIS_WEEK":
        return week_start, week_start + 7 * day
    if name == "LAST_WEEK":
        return week_start - 7 * day, week_start
    if name == "NEXT_WEEK":
        return week_start + 7 * day, week_start + 14 * day
    if name == "THIS_MONTH":
        return _month_start(today), _month_start(today, 1)
    if name == "LAST_MONTH":
        return _month_start(today, -1), _month_start(today)
    if name == "NEXT_MONTH":
        return _month_start(today, 1), _month_start(today, 2)
    if name == "LAST_90_DAYS":
        return relative_range("LAST_N_DAYS", 90, today)
    if name == "NEXT_90_DAYS":
        return relative_range("NEXT_N_DAYS", 90, today)
    if name == "THIS_QUARTER":
        return _quarter_start(today), _quarter_start(today, 1)
    if name == "LAST_QUARTER":
        return _quarter_start(today, -1), _quarter_start(today)
    if name == "NEXT_QUARTER":
        return _quarter_start(today, 1), _quarter_start(today, 2)
    if name == "THIS_YEAR":
        return date(today.year, 1, 1), date(today.year + 1, 1, 1)
    if name == "LAST_YEAR":
        return date(today.year - 1, 1, 1), date(today.year, 1, 1)
    if name == "NEXT_YEAR":
        return date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)
    # LAST_N_DAYS:n runs from 00:00 n days ago through today; NEXT_N_DAYS:n from tomorrow.
    if name == "LAST_N_DAYS":
        return today - n * day, today + day
    if name == "NEXT_N_DAYS":
        return today + day, today + (n + 1) * day
    if name == "N_DAYS_AGO":
        return today - n * day, today - (n - 1) * day
    if name == "LAST_N_WEEKS":
        return week_start - 7 * n * day, week_start
    if name == "NEXT_N_WEEKS":
        return week_start + 7 * day, week_start + 7 * (n + 1) * day
    if name == "N_WEEKS_AGO":
        return week_start - 7 * n * day, week_start - 7 * (n - 1) * day
    if name == "LAST_N_MONTHS":
        return _month_start(today, -n), _month_start(today)
    if name == "NEXT_N_MONTHS":
        return _month_start(today, 1), _month_start(today, n + 1)
    if name == "N_MONTHS_AGO":
        return _month_start(today, -n), _month_start(today, -n + 1)
    if name == "LAST_N_QUARTERS":
        return _quarter_start(today, -n), _quarter_start(today)
    if name == "NEXT_N_QUARTERS":
        return _quarter_start(today, 1), _quarter_start(today, n + 1)
    if name == "N_QUARTERS_AGO":
        return _quarter_start(today, -n), _quarter_start(today, -n + 1)
    if name == "LAST_N_YEARS":
        return date(today.year - n, 1, 1), date(today.year, 1, 1)
    if name == "NEXT_N_YEARS":
        return date(today.year + 1, 1, 1), date(today.year + n + 1, 1, 1)
    if name == "N_YEARS_AGO":
        return date(today.year - n, 1, 1), date(today.year - n + 1, 1, 1)
    raise ValueError(name)
