"""core.request_values.db_int: integers a database column can hold, in ASCII digits only."""
import pytest

from core.request_values import MAX_DB_INT, db_int


@pytest.mark.parametrize("text, number", [("1", 1), (" 42 ", 42), ("-7", -7), (str(MAX_DB_INT), MAX_DB_INT)])
def test_plain_integers(text, number):
    assert db_int(text) == number


@pytest.mark.parametrize("text", ["١", "１２", "٣٤", "1٠", str(MAX_DB_INT + 1), str(-MAX_DB_INT - 1), "", "x", "1.0",
                                  "9" * 5000])
def test_other_digits_out_of_range_and_non_numbers_are_refused(text):
    with pytest.raises(ValueError):
        db_int(text)
