import pytest

from sync.ids import InvalidRecordId, checksum, is_valid_id, to_18


@pytest.mark.parametrize("id15, id18", [
    ("003Dn00000QxRtA", "003Dn00000QxRtAIAV"),
    ("003Dn00000QxrtA", "003Dn00000QxrtAIAR"),
    ("001Da00000xnAiy", "001Da00000xnAiyIAE"),
    ("003Dn0000000001", "003Dn0000000001IAA"),
])
def test_15_to_18_appends_the_case_checksum(id15, id18):
    assert checksum(id15) == id18[15:]
    assert to_18(id15) == id18


def test_18_character_ids_are_kept_exactly():
    assert to_18("003Dn00000QxrtAIAR") == "003Dn00000QxrtAIAR"
    assert to_18("  003Dn00000QxRtAIAV ") == "003Dn00000QxRtAIAV"


def test_ids_differing_only_in_case_stay_distinct():
    assert to_18("003Dn00000QxRtA") != to_18("003Dn00000QxrtA")


@pytest.mark.parametrize("bad", [
    "003dn00000qxrtaiav",   # lower-cased 18: checksum no longer matches
    "003Dn00000QxRtAIAR",   # Omar's suffix on Mei's ID
    "003Dn00000QxRt",       # 14 characters
    "003Dn00000QxRtA-IAV",
    "000000000000000AAA",
    "",
    None,
    12345,
])
def test_invalid_ids_are_refused(bad):
    assert not is_valid_id(bad)
    with pytest.raises(InvalidRecordId):
        to_18(bad)


def _checksum_by_the_book(id15: str) -> str:
    """Salesforce's published algorithm, one character at a time."""
    suffix = ""
    for start in (0, 5, 10):
        bits = sum(1 << i for i, char in enumerate(id15[start:start + 5]) if "A" <= char <= "Z")
        suffix += "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"[bits]
    return suffix


def test_checksum_is_the_published_algorithm_for_any_15_characters():
    import random
    import string
    rnd = random.Random(7)
    alphabet = string.ascii_letters + string.digits + "ÄéÉ_-. \u0131\u212a"  # odd ones take the long way
    for _ in range(20000):
        id15 = "".join(rnd.choice(alphabet) for _ in range(15))
        assert checksum(id15) == _checksum_by_the_book(id15), id15
