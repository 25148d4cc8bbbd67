"""Salesforce record IDs: 15-character case-sensitive and 18-character checksummed forms."""

_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to18(id15: str) -> str:
    suffix = ""
    for chunk in range(3):
        bits = 0
        for i, ch in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= ch <= "Z":
                bits |= 1 << i
        suffix += _SUFFIX[bits]
    return id15 + suffix
