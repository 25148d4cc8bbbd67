"""C09 (pure part): extensions are kept apart from the E.164 digits."""
from sync.validate import normalize_phone
from tests.conftest import load_case


def test_c09_main_numbers_parse_with_separate_extensions():
    case = load_case("C09")
    region = case["input"]["default_region"]
    for record in case["input"]["records_without_email"]:
        result = normalize_phone(record["Phone"], region)
        expected = case["expected"]["parsed"][record["Id"]]
        assert (result.e164, result.extension) == (expected["e164"], expected["extension"])
        assert result.flag is None


def test_c09_extra_parse_checks():
    case = load_case("C09")
    for check, expected in zip(case["input"]["extra_parse_checks"],
                               case["expected"]["extra_parse_checks"], strict=True):
        result = normalize_phone(check["value"], check["default_region"])
        assert (result.e164, result.extension) == (expected["e164"], expected["extension"])


def test_c09_glued_forms_are_never_produced():
    case = load_case("C09")
    never = set(case["expected"]["never_stored_as"])
    keys = []
    for record in case["input"]["records_without_email"]:
        result = normalize_phone(record["Phone"], "US")
        assert result.e164 not in never
        keys.append(result.key)
    assert keys == ["+12015550123;ext=42", "+12015550123;ext=42", "+12015550123;ext=43",
                    "+12015550123"]


def test_c09_sync_merges_only_the_same_extension():
    from sync.engine import run
    from sync.fakes import ListLog
    from sync.mapping import SourceRef
    from sync.memory import MemorySink
    from sync.plan import Plan

    case = load_case("C09")
    plan = Plan(org_id="00DDn00000Org1AAA", object_name="Contact",
                default_region=case["input"]["default_region"])
    sink = MemorySink()
    summary = run(plan, [case["input"]["records_without_email"]], sink, ListLog())
    assert summary.status == "succeeded"
    assert len(sink.participants) == case["expected"]["participants_after_sync"]

    def pid(record_id):
        return sink.participant_for(SourceRef(plan.org_id, "Contact", record_id)).id

    ids = [r["Id"] for r in case["input"]["records_without_email"]]
    [(first, second)] = case["expected"]["merged_pairs"]
    assert pid(first) == pid(second)
    assert len({pid(i) for i in ids}) == 3
    stored = {(p.values["phone"], p.values.get("phone_extension"))
              for p in sink.participants.values()}
    assert stored == {("+12015550123", "42"), ("+12015550123", "43"), ("+12015550123", None)}
    assert not stored & {(v, None) for v in case["expected"]["never_stored_as"]}
