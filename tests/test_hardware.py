"""The hardware fingerprint and the ISA matrix's choices (no subprocess: the matrix itself runs in CI)."""

from __future__ import annotations

import pytest

from conformance import hardware, isa

AVX512 = frozenset(
    ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"]
)
AVX2 = frozenset(["sse4_2", "avx", "avx2", "fma"])


def test_native_isa_follows_the_cpu_flags() -> None:
    assert hardware.native_isa(AVX512) == "AVX512_VNNI"
    assert hardware.native_isa(AVX2) == "AVX2"
    assert hardware.native_isa(frozenset({"sse4_2"})) == "SSE4_2"
    assert hardware.native_isa(frozenset({"neon", "asimd"})) is None  # not x86
    assert hardware.native_torch_capability(AVX512) == "AVX512"
    assert hardware.native_torch_capability(AVX2) == "AVX2"
    assert hardware.native_torch_capability(frozenset({"sse4_2"})) == "default"


def test_the_cap_in_xla_flags_lowers_the_isa() -> None:
    flags = "--xla_force_host_platform_device_count=4 --xla_cpu_max_isa=sse4_2"
    assert hardware.max_isa_flag(flags) == "SSE4_2"
    assert hardware.max_isa_flag("") is None and hardware.max_isa_flag(None) is None
    assert hardware.xla_isa("AVX512", "SSE4_2") == "SSE4_2"
    assert hardware.xla_isa("AVX2", "AVX512") == "AVX2"  # a cap above the CPU changes nothing
    with pytest.raises(ValueError, match="unknown XLA ISA 'AVX9'"):
        hardware.isa_rank("AVX9")


def test_the_fingerprint_names_the_machine(monkeypatch) -> None:
    env = {"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2", "ATEN_CPU_CAPABILITY": "default"}
    fp = hardware.fingerprint(probe_torch_too=False, probe_jax_too=False, env=env)
    assert fp["cpu_model"] and fp["cpu_count"] >= 1
    assert fp["xla_flags"] == env["XLA_FLAGS"] and fp["aten_cpu_capability"] == "default"
    if fp["xla_isa_native"] is not None:  # an x86 machine
        assert fp["xla_isa"] == "SSE4_2" and fp["torch_cpu_capability"] == "default"
        line = hardware.summary(fp)
        assert fp["cpu_model"] in line and "XLA ISA SSE4_2 (capped" in line and "XLA_FLAGS=" in line
        assert hardware.slug(fp) == "sse42-default"


def test_the_isa_matrix_skips_what_the_cpu_cannot_run() -> None:
    configs, skipped = isa.matrix(["SSE4_2", "AVX512", "native"], ["default", "native"], "AVX2")
    assert [c.label for c in configs] == [
        "xla-sse4_2_torch-default",
        "xla-sse4_2_torch-native",
        "xla-native_torch-default",
        "xla-native_torch-native",
    ]
    assert skipped == ["AVX512: not available on this CPU (native AVX2)"]
    with pytest.raises(ValueError, match="unknown ATEN_CPU_CAPABILITY 'AVX9'"):
        isa.matrix(["native"], ["AVX9"], "AVX2")


def test_a_configuration_keeps_the_other_xla_flags() -> None:
    base = {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4 --xla_cpu_max_isa=AVX",
        "ATEN_CPU_CAPABILITY": "AVX2",
    }
    env = isa.Config("SSE4_2", "default").env(base)
    assert env["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4 --xla_cpu_max_isa=SSE4_2"
    assert env["ATEN_CPU_CAPABILITY"] == "default"
    native = isa.Config("native", "native").env(base)
    assert (
        native["XLA_FLAGS"] == "--xla_force_host_platform_device_count=4"
        and "ATEN_CPU_CAPABILITY" not in native
    )


def test_ci_picks_a_configuration_unlike_the_current_one() -> None:
    if hardware.native_isa() in (None, "SSE4_2"):
        pytest.skip("this CPU has nothing older to emulate")
    assert isa.ci_config({}) == isa.Config("SSE4_2", "default")
    capped = {"XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2", "ATEN_CPU_CAPABILITY": "default"}
    assert isa.ci_config(capped) == isa.Config("native", "native")
