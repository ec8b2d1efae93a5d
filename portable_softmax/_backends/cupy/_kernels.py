"""Compile ``kernels.cu`` once per process and device (``cupy.RawModule``) and launch it.

Imported only when a kernel runs (the backend's functions import it on their first call),
so importing portable_softmax, or its CuPy backend, never imports CuPy. Launches go on
CuPy's current stream, on the input's device. Nothing here reads a device value: the
cross-entropy reductions stay on the device as 0-d arrays. A function returns
``NotImplemented`` only when no launch fits the device (``_launch.plan``); the backend then
runs the call on the generic path. UNVERIFIED: this has never run on a GPU.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import cupy
import numpy as np

from ..._lib._call import CrossEntropyCall
from . import _launch

SOURCE = Path(__file__).with_name("kernels.cu")


def _options() -> tuple[str, ...]:
    """NVRTC options: C++17, and the toolkit's headers where they can be found (cuda_fp16.h
    and cuda_bf16.h come with NVRTC in recent toolkits; older setups need the folder)."""
    options = ["--std=c++17"]
    roots = [os.environ.get("CUDA_PATH"), "/usr/local/cuda"]
    get_cuda_path = getattr(cupy.cuda, "get_cuda_path", None)
    if get_cuda_path is not None:
        roots.insert(0, get_cuda_path())
    for root in roots:
        if root and Path(root, "include", "cuda_bf16.h").is_file():
            options.append(f"-I{Path(root, 'include')}")
            break
    return tuple(options)


@functools.cache
def _module(device_id: int) -> Any:
    """Every instantiation, compiled on first use (CuPy also caches the binary on disk)."""
    with cupy.cuda.Device(device_id):
        return cupy.RawModule(
            code=SOURCE.read_text(),
            options=_options(),
            name_expressions=list(_launch.name_expressions()),
        )


@functools.cache
def _function(device_id: int, name: str) -> Any:
    with cupy.cuda.Device(device_id):
        return _module(device_id).get_function(name)


@functools.cache
def properties(device_id: int) -> _launch.DeviceProperties:
    """The device's properties as the launch plan wants them (queried once per device):
    from ``Device.attributes``, else from ``cudaGetDeviceProperties``' field names."""
    try:
        return _launch.DeviceProperties.from_attributes(cupy.cuda.Device(device_id).attributes)
    except (KeyError, AttributeError):
        p = cupy.cuda.runtime.getDeviceProperties(device_id)
        return _launch.DeviceProperties(
            multiprocessor_count=int(p["multiProcessorCount"]),
            max_threads_per_block=int(p["maxThreadsPerBlock"]),
            shared_memory_per_block=int(p["sharedMemPerBlock"]),
            shared_memory_per_block_optin=int(p.get("sharedMemPerBlockOptin", 0)),
            warp_size=int(p["warpSize"]),
        )


_opted_in: dict[tuple[int, str], int] = {}


def _launch_kernel(device_id: int, launch: _launch.Launch, args: tuple[Any, ...]) -> None:
    kernel = _function(device_id, launch.name)
    if launch.opt_in and _opted_in.get((device_id, launch.name), 0) < launch.shared_bytes:
        # more dynamic shared memory than the default 48 KiB must be asked for per kernel
        kernel.max_dynamic_shared_size_bytes = launch.shared_bytes
        _opted_in[(device_id, launch.name)] = launch.shared_bytes
    kernel((launch.grid,), (launch.block,), args, shared_mem=launch.shared_bytes)


def _acc(dtype_name: str) -> Any:
    return np.dtype(_launch.DTYPES[dtype_name].acc_name)


def _plan(family: str, op: int, x: Any, rows: int, n: int, *arrays: Any) -> Any:
    device_id = x.device.id
    pointers = [a.data.ptr for a in (x, *arrays)]
    name = x.dtype.name
    return _launch.plan(family, op, name, rows, n, properties(device_id), pointers)


def forward(x: Any, op: int, temperature: float, rows: int, n: int, keepdims: bool) -> Any:
    """softmax (0), log_softmax (1) or logsumexp (2) over the last axis; NotImplemented when
    no launch fits this device."""
    with x.device:
        if op == 2:
            shape = (*x.shape[:-1], 1) if keepdims else x.shape[:-1]
            out = cupy.empty(shape, dtype=x.dtype)
            launch = _plan("forward", op, x, rows, n)  # one value per row: no vector store
        else:
            out = cupy.empty_like(x)
            launch = _plan("forward", op, x, rows, n, out)
        if launch is None:
            return NotImplemented
        t = _acc(x.dtype.name).type(temperature)
        args = (x, out, np.int64(rows), np.int32(n), t, np.int32(launch.vectorized))
        _launch_kernel(x.device.id, launch, args)
        return out


def derivative(p: Any, v: Any, op: int, temperature: float, rows: int, n: int) -> Any:
    """The backward passes and JVPs: ``p`` the forward output (y or logp), ``v`` the vector."""
    with p.device:
        out = cupy.empty_like(p)
        launch = _plan("derivative", op, p, rows, n, v, out)
        if launch is None:
            return NotImplemented
        t = _acc(p.dtype.name).type(temperature)
        args = (p, v, out, np.int64(rows), np.int32(n), t, np.int32(launch.vectorized))
        _launch_kernel(p.device.id, launch, args)
        return out


def _safe_divide(total: Any, d: Any) -> Any:
    """``total / d`` with 0 for ``d == 0`` (a NaN total stays NaN), on the device."""
    zero = cupy.where(cupy.isnan(total), total, 0)
    return cupy.where(d == 0, zero, total / cupy.where(d == 0, 1, d))


class _Xent:
    """The operands of one cross-entropy call, in the kernels' types: labels as int64, the
    weight (or a placeholder) in the accumulation type, the smoothing's two factors."""

    def __init__(self, call: CrossEntropyCall) -> None:
        logits = call.logits
        self.logits = logits
        self.dtype_name = logits.dtype.name
        self.acc = _acc(self.dtype_name)
        self.reduction = call.reduction
        self.classes = call.classes
        self.rows = int(logits.size) // call.classes  # not empty: the registry says so
        self.loss_shape = call.loss_shape
        self.ignore_index = call.ignore_index
        self.labels = cupy.ascontiguousarray(call.target, dtype=cupy.int64).reshape(-1)
        self.weighted = call.weight is not None
        # unweighted calls still pass a valid pointer; the kernels do not read it
        self.weight = (
            cupy.ascontiguousarray(call.weight, dtype=self.acc)
            if call.weight is not None
            else cupy.zeros(1, dtype=self.acc)
        )
        eps = call.smoothing
        self.keep = self.acc.type(1.0 - eps)
        self.share = self.acc.type(eps / call.classes)
        self._denominator: Any = None

    def options(self) -> tuple[Any, ...]:
        ignore = self.ignore_index
        return (
            self.labels,
            self.weight,
            np.int32(self.weighted),
            np.int32(ignore is not None),
            np.int64(0 if ignore is None else ignore),
            self.keep,
            self.share,
        )

    def denominator(self) -> Any:
        """``D = sum_n w[label_n]`` over the samples that count, as a 0-d device array
        (computed once per call: the loss and the gradient of a mean share it)."""
        if self._denominator is not None:
            return self._denominator
        device_id = self.logits.device.id
        d = cupy.empty(self.rows, dtype=self.acc)
        grid, block = _launch.denominator_launch(self.rows, properties(device_id))
        kernel = _function(device_id, _launch.denominator_expression(self.dtype_name))
        kernel(
            (grid,), (block,), (*self.options()[:5], d, np.int64(self.rows), np.int32(self.classes))
        )
        self._denominator = _accurate_total(d, self.acc)
        return self._denominator

    def args(
        self, scale: Any, step: int, grad: Any, loss: Any, vectorized: bool
    ) -> tuple[Any, ...]:
        """The arguments of a loss or gradient kernel (``PS_XENT_ARGS`` in kernels.cu)."""
        return (
            self.logits,
            *self.options(),
            scale,
            np.int64(step),
            grad,
            loss,
            np.int64(self.rows),
            np.int32(self.classes),
            np.int32(vectorized),
        )


def _accurate_total(a: Any, acc: Any) -> Any:
    """Sum of a per-sample array: float32 sums are taken in float64, then rounded back."""
    return a.sum(dtype=cupy.float64).astype(acc) if acc == np.float32 else a.sum()


def _loss(ops: _Xent, launch: _launch.Launch) -> Any:
    """The loss kernel's launch, then the reduction on the device."""
    logits = ops.logits
    losses = cupy.empty(ops.rows, dtype=ops.acc)
    unused = cupy.empty(1, dtype=ops.acc)
    args = ops.args(unused, 0, logits, losses, launch.vectorized)
    _launch_kernel(logits.device.id, launch, args)
    if ops.reduction == "none":
        out = losses.reshape(ops.loss_shape)
    else:
        out = _accurate_total(losses, ops.acc)
        if ops.reduction == "mean":
            out = _safe_divide(out, ops.denominator())
    return out.astype(logits.dtype, copy=False)


def _gradient(ops: _Xent, grad: Any, out: Any, launch: _launch.Launch) -> Any:
    """The fused gradient's launch; the incoming gradient (over D for "mean") stays on the
    device."""
    g = cupy.ones((), dtype=ops.acc) if grad is None else grad.astype(ops.acc)
    if ops.reduction == "mean":
        g = _safe_divide(g, ops.denominator())
    scale = cupy.ascontiguousarray(g, dtype=ops.acc).reshape(-1)
    step = 1 if ops.reduction == "none" and grad is not None else 0
    unused = cupy.empty(1, dtype=ops.acc)
    _launch_kernel(
        ops.logits.device.id, launch, ops.args(scale, step, out, unused, launch.vectorized)
    )
    return out


def cross_entropy(call: CrossEntropyCall) -> Any:
    """The loss, reduced on the device; NotImplemented when no launch fits this device."""
    logits = call.logits
    with logits.device:
        ops = _Xent(call)
        launch = _plan("xent", 0, logits, ops.rows, ops.classes)
        if launch is None:
            return NotImplemented
        return _loss(ops, launch)


def cross_entropy_backward(call: CrossEntropyCall) -> Any:
    """The fused gradient; NotImplemented when no launch fits this device."""
    logits = call.logits
    with logits.device:
        ops = _Xent(call)
        out = cupy.empty_like(logits)
        launch = _plan("xent", 1, logits, ops.rows, ops.classes, out)
        if launch is None:
            return NotImplemented
        return _gradient(ops, call.grad, out, launch)


def cross_entropy_with_grad(call: CrossEntropyCall) -> Any:
    """``(loss, gradient)``: two launches, the loss kernel's and the gradient kernel's
    (kernels.cu has no kernel that writes both yet), sharing the int64 labels, the weight
    and the mean's denominator; NotImplemented when no launch fits this device."""
    logits = call.logits
    with logits.device:
        ops = _Xent(call)
        out = cupy.empty_like(logits)
        loss_launch = _plan("xent", 0, logits, ops.rows, ops.classes)
        grad_launch = _plan("xent", 1, logits, ops.rows, ops.classes, out)
        if loss_launch is None or grad_launch is None:
            return NotImplemented
        return _loss(ops, loss_launch), _gradient(ops, call.grad, out, grad_launch)
