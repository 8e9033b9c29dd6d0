from __future__ import annotations

from prime_model.export.int8 import candidate_options, default_options
from prime_model.runtime.cpu import (
    InstructionSet,
    instruction_set,
    instruction_set_from,
    parse_flags,
)

ZEN3 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma bmi2 sha_ni\n\nprocessor\t: 1\nflags: x\n"
ZEN4 = "flags\t: fpu avx avx2 avx512f avx512bw avx512_vnni avx512_bf16\n"
ALDER = "flags\t: avx avx2 avx_vnni\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd aes sha2 asimddp sve\n"


def test_flags_come_from_the_first_processor_block() -> None:
    assert parse_flags(ZEN3) == {"fpu", "sse2", "avx", "avx2", "fma", "bmi2", "sha_ni"}
    assert parse_flags(GRAVITON) >= {"asimd", "asimddp"}
    assert parse_flags("nothing useful\n") == frozenset()


def test_vnni_and_the_class_label_per_cpu() -> None:
    cases = {
        ZEN3: ("avx2", False),
        ZEN4: ("avx512-vnni", True),
        ALDER: ("avx-vnni", True),
        GRAVITON: ("aarch64", False),
        "": ("aarch64", False),
    }
    for text, (label, vnni) in cases.items():
        cpu = instruction_set_from(text, "x86_64" if "avx" in text else "aarch64")
        assert (cpu.label, cpu.has_vnni) == (label, vnni), text
    assert InstructionSet(architecture="", features=()).label == "unknown"


def test_cpuid_hiding_avx512_wins_over_a_passed_through_cpuinfo() -> None:
    assert instruction_set_from(ZEN4, "x86_64", "AVX512").label == "avx512-vnni"
    emulated = instruction_set_from(ZEN4, "x86_64", "AVX2")
    assert emulated.label == "avx2" and not emulated.has_vnni
    assert instruction_set_from(ALDER, "x86_64", "AVX2").has_vnni  # 256-bit VNNI is not AVX-512
    assert instruction_set_from(ZEN4, "x86_64", "DEFAULT").label == "x86_64"


def test_the_unmeasured_default_uses_7_bit_weights_only_without_vnni() -> None:
    zen3, zen4 = instruction_set_from(ZEN3, "x86_64"), instruction_set_from(ZEN4, "x86_64")
    assert default_options(zen3).reduce_range and not default_options(zen4).reduce_range
    for cpu in (zen3, zen4):
        candidates = candidate_options(cpu)
        assert candidates[0] == default_options(cpu)
        assert {c.scheme for c in candidates} == {"dynamic", "weight-only"}
        assert len(set(candidates)) == len(candidates)


def test_this_machine_is_described() -> None:
    cpu = instruction_set()
    assert cpu is instruction_set()  # cached
    assert cpu.label and set(cpu.features) <= {
        "avx2",
        "avx512f",
        "avx512_vnni",
        "avx_vnni",
        "amx_int8",
        "asimd",
        "asimddp",
    }
