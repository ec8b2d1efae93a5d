"""How each CuPy kernel of ``kernels.cu`` is launched: pure Python, importable without CuPy.

A call names a kernel family (``forward``, ``derivative``, ``xent``), an operation code
within it, a dtype and a layout (``rows`` rows of ``n`` contiguous entries). :func:`plan`
picks the variant from the row length and the device's properties (passed in, never those
of one card): one warp per row for short rows, one block per row with the row held in
shared memory while it fits (up to :data:`ON_CHIP_MAX` entries), and the streaming
``online`` variant (two reads) beyond. :func:`name_expressions` lists every template
instantiation, for ``cupy.RawModule(name_expressions=...)`` and for the compile check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "DTYPES",
    "FAMILIES",
    "FUNCTIONS",
    "VARIANTS",
    "DeviceProperties",
    "Launch",
    "denominator_expression",
    "denominator_launch",
    "name_expression",
    "name_expressions",
    "on_chip_limit",
    "plan",
    "vectorizable",
]


@dataclass(frozen=True)
class DType:
    """A storage dtype the kernels take: its C++ type and the bytes of storage and sums."""

    ctype: str
    itemsize: int
    acc_itemsize: int
    acc_name: str
    """The accumulation dtype's name (float32 for the 16-bit types)."""


DTYPES: Mapping[str, DType] = {
    "float32": DType("float", 4, 4, "float32"),
    "float64": DType("double", 8, 8, "float64"),
    "float16": DType("__half", 2, 4, "float32"),
    "bfloat16": DType("__nv_bfloat16", 2, 4, "float32"),
}

FAMILIES: Mapping[str, int] = {"forward": 3, "derivative": 3, "xent": 2}
"""Kernel family -> number of operation codes (the ``OP``/``KIND`` template argument)."""

FUNCTIONS: Mapping[str, tuple[str, int]] = {
    "softmax": ("forward", 0),
    "log_softmax": ("forward", 1),
    "logsumexp": ("forward", 2),
    "softmax_backward": ("derivative", 0),
    "softmax_jvp": ("derivative", 0),  # the Jacobian is symmetric: one formula
    "log_softmax_backward": ("derivative", 1),
    "log_softmax_jvp": ("derivative", 2),
    "cross_entropy": ("xent", 0),
    "cross_entropy_backward": ("xent", 1),
}
"""Public function -> (family, operation code)."""

VARIANTS = ("warp", "block", "online")

_CACHED_ARRAYS = {"forward": 1, "derivative": 2, "xent": 1}
"""Rows of the accumulation type an on-chip kernel keeps in shared memory per row."""

WARP_MAX = 1024
"""Rows up to this length get one warp each (at most 32 entries per lane)."""
ON_CHIP_MAX = 16384
"""Longest row held in shared memory; beyond it the online variant streams the row twice
(more shared memory per block would cost occupancy for little gain)."""
STATIC_SHARED = 1024
"""Bytes of shared memory kept for the kernels' static reduction scratch (32 values)."""
MAX_BLOCK = 512
"""Largest block of the block and online variants (``PS_MAX_BLOCK`` in kernels.cu: their
``__launch_bounds__`` leave 128 registers a thread, so nothing spills)."""
WARP_BLOCK = 256
"""Largest block of the warp variants, 8 rows (``PS_WARP_BLOCK`` in kernels.cu)."""
BLOCKS_PER_SM = 32
"""Grid cap per multiprocessor: the kernels loop over rows, so more blocks buy nothing."""
VECTOR_BYTES = 16


@dataclass(frozen=True)
class DeviceProperties:
    """What :func:`plan` needs to know about the device (from ``cupy.cuda.Device``)."""

    multiprocessor_count: int
    max_threads_per_block: int
    shared_memory_per_block: int
    """Dynamic shared memory a launch gets without opting in (48 KiB on current cards)."""
    shared_memory_per_block_optin: int
    """The most a kernel may opt in to (227 KiB on H100/H200, 64 KiB on Turing)."""
    warp_size: int

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, int]) -> DeviceProperties:
        """From ``cupy.cuda.Device().attributes`` (the CUDA device attribute names)."""
        default = int(attributes["MaxSharedMemoryPerBlock"])
        return cls(
            multiprocessor_count=int(attributes["MultiProcessorCount"]),
            max_threads_per_block=int(attributes["MaxThreadsPerBlock"]),
            shared_memory_per_block=default,
            shared_memory_per_block_optin=int(
                attributes.get("MaxSharedMemoryPerBlockOptin", default)
            ),
            warp_size=int(attributes["WarpSize"]),
        )


@dataclass(frozen=True)
class Launch:
    """One kernel launch: which instantiation, grid and block sizes, dynamic shared memory."""

    name: str
    variant: str
    grid: int
    block: int
    shared_bytes: int
    vectorized: bool
    opt_in: bool
    """Whether ``shared_bytes`` exceeds the default and the kernel must opt in first."""


def name_expression(family: str, variant: str, dtype: str, op: int) -> str:
    """``ps_forward_warp<float, 0>``: the instantiation as CuPy and NVRTC name it."""
    return f"ps_{family}_{variant}<{DTYPES[dtype].ctype}, {op}>"


def denominator_expression(dtype: str) -> str:
    """The per-sample denominator kernel of cross-entropy's ``"mean"``."""
    return f"ps_xent_denominator<{DTYPES[dtype].ctype}>"


def name_expressions() -> tuple[str, ...]:
    """Every instantiation: family x variant x dtype x operation, then the denominators."""
    names = [
        name_expression(family, variant, dtype, op)
        for family, ops in FAMILIES.items()
        for variant in VARIANTS
        for dtype in DTYPES
        for op in range(ops)
    ]
    return (*names, *(denominator_expression(dtype) for dtype in DTYPES))


def vectorizable(pointers: Sequence[int], n: int, itemsize: int) -> bool:
    """Whether 16-byte vector loads and stores are aligned for every row of every array:
    each base address a multiple of 16 and each row a whole number of vectors."""
    return (n * itemsize) % VECTOR_BYTES == 0 and all(p % VECTOR_BYTES == 0 for p in pointers)


def _shared_budget(device: DeviceProperties) -> int:
    return max(device.shared_memory_per_block_optin, device.shared_memory_per_block)


def on_chip_limit(family: str, dtype: str, device: DeviceProperties) -> int:
    """The longest row the block variant holds in shared memory on this device."""
    per_entry = _CACHED_ARRAYS[family] * DTYPES[dtype].acc_itemsize
    fits = (_shared_budget(device) - STATIC_SHARED) // per_entry
    return max(0, min(ON_CHIP_MAX, fits))


def _pow2_floor(value: int) -> int:
    return 1 << (value.bit_length() - 1) if value > 0 else 0


def _pow2_ceil(value: int) -> int:
    return 1 << max(0, value - 1).bit_length()


def _block_threads(n: int, device: DeviceProperties) -> int:
    """About 8 entries per thread, between 4 warps and the largest block (a power of two)."""
    largest = _pow2_floor(min(MAX_BLOCK, device.max_threads_per_block))
    return max(min(4 * device.warp_size, largest), min(largest, _pow2_ceil(-(-n // 8))))


def _grid(units: int, device: DeviceProperties) -> int:
    return max(1, min(units, BLOCKS_PER_SM * device.multiprocessor_count))


def plan(
    family: str,
    op: int,
    dtype: str,
    rows: int,
    n: int,
    device: DeviceProperties,
    pointers: Sequence[int],
) -> Launch | None:
    """The launch for ``rows`` rows of ``n`` entries, or None where the kernels do not apply
    (a warp size other than 32, blocks under 128 threads, no rows, rows beyond ``int``).

    ``pointers`` are the device addresses of every array read or written row by row.
    """
    if (
        family not in FAMILIES
        or not 0 <= op < FAMILIES[family]
        or dtype not in DTYPES
        or device.warp_size != 32
        or device.max_threads_per_block < 128
        or rows < 1
        or not 1 <= n < 2**31
    ):
        return None
    spec = DTYPES[dtype]
    vec = vectorizable(pointers, n, spec.itemsize)
    row_bytes = _CACHED_ARRAYS[family] * spec.acc_itemsize * n
    if n <= WARP_MAX and row_bytes <= device.shared_memory_per_block:
        # as many warps (rows) per block as fit in the default shared memory, up to 8
        most = min(WARP_BLOCK, device.max_threads_per_block) // 32
        warps = max(1, min(most, device.shared_memory_per_block // row_bytes))
        grid = _grid(-(-rows // warps), device)
        name = name_expression(family, "warp", dtype, op)
        return Launch(name, "warp", grid, 32 * warps, warps * row_bytes, vec, False)
    if n <= on_chip_limit(family, dtype, device):
        name = name_expression(family, "block", dtype, op)
        opt_in = row_bytes > device.shared_memory_per_block
        threads = _block_threads(n, device)
        return Launch(name, "block", _grid(rows, device), threads, row_bytes, vec, opt_in)
    threads = _pow2_floor(min(MAX_BLOCK, device.max_threads_per_block))
    name = name_expression(family, "online", dtype, op)
    return Launch(name, "online", _grid(rows, device), threads, 0, vec, False)


def denominator_launch(rows: int, device: DeviceProperties) -> tuple[int, int]:
    """(grid, block) of the denominator kernel: one thread per sample."""
    threads = min(256, _pow2_floor(min(MAX_BLOCK, device.max_threads_per_block)))
    return _grid(-(-rows // threads), device), threads
