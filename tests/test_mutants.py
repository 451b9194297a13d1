"""The catalogues of porting bugs stay applicable: every mutant's patch matches its file exactly once, ids are
unique, kinds are known."""

from __future__ import annotations

from collections import Counter

from conformance import mutate, subsystems


def test_every_catalogued_mutant_applies_to_the_code_as_it_is() -> None:
    mutants = mutate.catalogue()
    for m in mutants:
        text = (mutate.ROOT / m.path).read_text(encoding="utf-8")
        assert m.path.startswith("implementations/"), f"{m.id}: mutants patch the ports, not {m.path}"
        assert text.count(m.old) == 1, f"{m.id}: its old text occurs {text.count(m.old)} times in {m.path}"
        assert m.subsystem in subsystems.names(), m.id


def test_each_subsystem_has_a_catalogue_of_at_least_ten() -> None:
    counts = Counter(m.subsystem for m in mutate.catalogue())
    assert {s: counts.get(s, 0) for s in subsystems.names()} == {
        s: max(counts.get(s, 0), 10) for s in subsystems.names()
    }, counts


def test_a_failed_test_kills_even_when_xdist_reports_the_stop_as_interrupted() -> None:
    m = mutate.catalogue()[0]
    failed = (
        "x\nFAILED conformance/test_parity.py::test_parity[a]\n!!! xdist.dsession.Interrupted: stopping\n"
    )
    assert mutate.judge(m, 2, failed, 1.0).status == "killed"
    assert mutate.judge(m, 2, failed, 1.0).killer == "conformance/test_parity.py::test_parity[a]"
    assert mutate.judge(m, 2, "ERROR collecting conformance/x.py\n", 1.0).status == "invalid"
    assert mutate.judge(m, 0, "", 1.0).status == "survived"
