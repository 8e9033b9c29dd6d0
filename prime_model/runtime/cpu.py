"""The CPU's instruction set, as far as int8 inference cares.

Dynamic int8 multiplies uint8 activations by int8 weights. With VNNI (``vpdpbusd``) the products
are summed in 32 bits; without it (AVX2-only x86, e.g. AMD Zen 3) the kernels use ``vpmaddubsw``,
which saturates pairs of products at 16 bits, so full 8-bit weights lose accuracy there and
ONNX Runtime's ``reduce_range`` (7-bit weights) is the documented fix. Read from
``/proc/cpuinfo`` on Linux, cross-checked with what torch's CPUID probe found (an emulator or
hypervisor may pass the host's cpuinfo through while hiding AVX-512 from CPUID, which is what
ONNX Runtime's kernels go by); elsewhere the CPU counts as unknown, which is treated like no VNNI.
"""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path
from typing import Final

from pydantic import BaseModel, ConfigDict, Field

CPUINFO: Final = Path("/proc/cpuinfo")
_VNNI_FLAGS: Final = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})
_FEATURES: Final = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimd", "asimddp")


class InstructionSet(BaseModel):
    """The features that decide which int8 scheme is accurate and fast here."""

    model_config = ConfigDict(frozen=True)

    architecture: str = Field(description="platform.machine(), e.g. x86_64")
    features: tuple[str, ...] = Field(description="the int8-relevant flags this CPU reports")

    @property
    def has_vnni(self) -> bool:
        return bool(_VNNI_FLAGS.intersection(self.features))

    @property
    def label(self) -> str:
        """A short class name: 'avx512-vnni', 'avx-vnni', 'avx512', 'avx2', or the arch."""
        found = set(self.features)
        if "avx512_vnni" in found or "amx_int8" in found:
            return "avx512-vnni"
        if "avx_vnni" in found:
            return "avx-vnni"
        if "avx512f" in found:
            return "avx512"
        if "avx2" in found:
            return "avx2"
        return self.architecture or "unknown"


def parse_flags(cpuinfo: str) -> frozenset[str]:
    """The first ``flags`` (x86) or ``Features`` (arm) line of a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def instruction_set_from(
    cpuinfo: str, architecture: str, capability: str | None = None
) -> InstructionSet:
    """The features in ``cpuinfo``, less those torch's CPUID ``capability`` (``AVX512``,
    ``AVX2`` or ``DEFAULT``; None: unknown) says the code here cannot use."""
    flags = parse_flags(cpuinfo)
    if capability in ("AVX2", "DEFAULT"):
        flags = frozenset(f for f in flags if not f.startswith("avx512"))
    if capability == "DEFAULT":
        flags = flags - {"avx2", "avx_vnni"}
    return InstructionSet(
        architecture=architecture, features=tuple(f for f in _FEATURES if f in flags)
    )


@cache
def instruction_set() -> InstructionSet:
    """This machine's instruction set (cached: it does not change while a process runs)."""
    try:
        text = CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    capability = None
    if platform.machine() in ("x86_64", "AMD64"):
        import torch  # noqa: PLC0415 - only for its CPUID probe

        capability = torch.backends.cpu.get_cpu_capability()
    return instruction_set_from(text, platform.machine(), capability)
