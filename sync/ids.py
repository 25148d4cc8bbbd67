"""Salesforce record IDs: 15 -> 18 character conversion and validation.

A 15-character ID is case-sensitive; the 18-character form appends a checksum of the case of
the first 15 characters. IDs are never lower-cased or truncated: two records whose 15-character
IDs differ only in case are different people (case C07).
"""
import re

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_CHARS = re.compile(r"\A[0-9A-Za-z]{15}(?:[0-9A-Z]{3})?\Z")


class InvalidRecordId(ValueError):
    """The value is not a 15- or 18-character Salesforce ID (or its checksum is wrong)."""


# An ID's characters as the bits of its checksum: upper-case letters 1, digits and lower case 0.
_CASE_BITS = str.maketrans({**{c: "1" for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"},
                            **{c: "0" for c in "abcdefghijklmnopqrstuvwxyz0123456789"}})


def checksum(id15: str) -> str:
    """The 3-character suffix for a 15-character ID."""
    if len(id15) != 15:
        raise InvalidRecordId(f"not a 15-character Salesforce ID: {id15!r}")
    bits = id15.translate(_CASE_BITS)
    if bits.count("1") + bits.count("0") == 15:
        # Each group of five, read right to left, is a 5-bit number: one per record of an import.
        return (_SUFFIX_ALPHABET[int(bits[4::-1], 2)] + _SUFFIX_ALPHABET[int(bits[9:4:-1], 2)]
                + _SUFFIX_ALPHABET[int(bits[14:9:-1], 2)])
    suffix = ""
    for start in (0, 5, 10):
        bits = 0
        for i, char in enumerate(id15[start:start + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def is_valid_id(value: object) -> bool:
    """True for a well-formed 15-character ID or an 18-character ID whose checksum matches."""
    if not isinstance(value, str) or not _ID_CHARS.match(value):
        return False
    if set(value[:15]) == {"0"}:
        return False
    return len(value) == 15 or value[15:] == checksum(value[:15])


def to_18(value: str) -> str:
    """The 18-character form of a 15- or 18-character ID, case intact.

    Raises InvalidRecordId for anything else, including an 18-character ID whose suffix does not
    match its case (a lower-cased ID fails here instead of silently naming another record).
    """
    if isinstance(value, str):
        value = value.strip()
    if not is_valid_id(value):
        raise InvalidRecordId(f"not a Salesforce record ID: {value!r}")
    return value if len(value) == 18 else value + checksum(value)
