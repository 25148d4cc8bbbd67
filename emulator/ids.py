"""Salesforce record IDs: 15-character case-sensitive base-62 plus the 3-character checksum suffix."""
import string

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def checksum(id15: str) -> str:
    out = []
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        out.append(_SUFFIX_ALPHABET[bits])
    return "".join(out)


def to18(id15: str) -> str:
    if len(id15) == 18:
        return id15
    if len(id15) != 15:
        raise ValueError(f"not a Salesforce id: {id15!r}")
    return id15 + checksum(id15)


def is_valid18(value: str) -> bool:
    return (isinstance(value, str) and len(value) == 18 and all(c in _BASE62 for c in value[:15])
            and checksum(value[:15]) == value[15:])


def normalize(value: str) -> str | None:
    """Accept a 15- or 18-character id and return the canonical 18-character form."""
    if not isinstance(value, str) or len(value) not in (15, 18):
        return None
    if any(c not in _BASE62 for c in value[:15]):
        return None
    if len(value) == 18:
        # the suffix is case-insensitive; the 15-character body is the identity
        return value[:15] + checksum(value[:15]) if value[15:].upper() == checksum(value[:15]) else None
    return to18(value)


def base62(n: int, width: int) -> str:
    chars = []
    while n:
        n, r = divmod(n, 62)
        chars.append(_BASE62[r])
    s = "".join(reversed(chars)) or "0"
    if len(s) > width:
        raise OverflowError("id space exhausted")
    return s.rjust(width, "0")


def make_id(prefix: str, pod: str, number: int) -> str:
    """prefix (3) + pod (2) + reserved '0' + record number (9, base 62) + checksum."""
    return to18(prefix + pod + "0" + base62(number, 9))
