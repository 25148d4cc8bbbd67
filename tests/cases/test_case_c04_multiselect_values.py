"""C04 (pure part): the imported persona keeps every multi-select value."""
from sync.mapping import map_record
from sync.plan import Mapping, Plan
from tests.conftest import load_case


def test_c04_multiselect_keeps_both_values():
    case = load_case("C04")
    plan = Plan(org_id="00DDn00000Org1AAA", object_name="Contact",
                mapping=Mapping(segments=("Persona__c",)))
    personas = {r["Id"]: map_record(plan, r).segments for r in case["input"]["records"]}
    assert personas == {
        "003Dn00000Mp1SaIAJ": ("Designer",),
        "003Dn00000Mp1SbIAJ": ("Researcher", "Designer"),
        "003Dn00000Mp1ScIAJ": ("Engineer",),
        "003Dn00000Mp1SdIAJ": (),
    }
