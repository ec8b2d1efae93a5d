"""The machine description in the report: the ISA level and the kernels' vector width."""

from __future__ import annotations

import pytest

from benchmarks._env import isa_level, kernel_vector_width


def test_isa_level_names_an_x86_64_level_or_the_machine() -> None:
    level = isa_level()
    assert level.startswith("x86-64-v") or "x86" not in level


def test_the_vector_probe_reads_the_kernels_assembly() -> None:
    """The probe compiles the float32 softmax kernel afresh and counts its vector registers:
    on x86-64 it uses some, and the width follows from the widest it uses."""
    pytest.importorskip("numba")
    found = kernel_vector_width()
    assert found is not None
    assert found["zmm"] + found["ymm"] + found["xmm"] > 0
    widest = 512 if found["zmm"] else 256 if found["ymm"] else 128
    assert found["width_bits"] == widest
    assert found["llvm_cpu"]
