"""The country names a worker reads from sync/country_names.json are phonenumbers' own."""
import json

import phonenumbers

from sync import validate


def test_stored_country_names_match_phonenumbers():
    stored = json.loads(validate.COUNTRY_NAMES_FILE.read_text(encoding="utf-8"))
    assert stored["phonenumbers"] == phonenumbers.__version__, \
        "phonenumbers was upgraded: run `python -m sync.validate` to rewrite country_names.json"
    assert stored["names"] == validate.build_country_names()


def test_region_lookup_uses_the_stored_names():
    assert validate.region_for_country("Deutschland") == "DE"
    assert validate.region_for_country("  Royaume-Uni ") == "GB"
    assert validate.region_for_country("Atlantis") is None
