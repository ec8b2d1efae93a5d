"""The peers being timed: the direct NumPy chain, the naive array-API chain, SciPy, PyTorch,
JAX; and ``build``, which lists
every implementation of a run (ours come from ``_ours``; the common interface is
``_impl_base.Impl``).
"""

from __future__ import annotations

import importlib
import math
from typing import Any

import numpy as np

from ._impl_base import Call, Impl, _HostOrCupy
from ._ours import build_ours

__all__ = ["PEERS", "Impl", "build", "gpu_available", "optional"]

PEERS = ("direct", "naive", "scipy", "torch", "jax")


# ---------------------------------------------------------------------------- naive chain


def naive_softmax(xp: Any, x: Any) -> Any:
    """The textbook array-API chain: max, subtract, exp, sum, divide."""
    e = xp.exp(x - xp.max(x, axis=-1, keepdims=True))
    return e / xp.sum(e, axis=-1, keepdims=True)


def naive_softmax_backward(xp: Any, g: Any, y: Any) -> Any:
    """``y * (g - sum(g*y))``."""
    return y * (g - xp.sum(g * y, axis=-1, keepdims=True))


def naive_cross_entropy(xp: Any, logits: Any, labels: Any) -> tuple[Any, Any]:
    """Mean loss and gradient: log_softmax, gather the labels, ``(p - onehot) / N``."""
    shifted = logits - xp.max(logits, axis=-1, keepdims=True)
    logp = shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))
    index = xp.expand_dims(labels, axis=-1)
    samples = max(1, math.prod(labels.shape))
    loss = -xp.sum(xp.take_along_axis(logp, index, axis=-1)) / samples
    classes = xp.arange(logits.shape[-1], dtype=labels.dtype)
    onehot = xp.astype(classes == index, logits.dtype)
    return loss, (xp.exp(logp) - onehot) / samples


class Naive(_HostOrCupy):
    """The naive chain written against the namespace ``array_api_compat`` gives."""

    name = "naive"

    def __init__(self, xp_name: str = "numpy") -> None:
        self.backend = xp_name
        self.device = "gpu" if xp_name == "cupy" else "cpu"
        self.threads = 1 if xp_name == "numpy" else None
        module = "array_api_compat.cupy" if xp_name == "cupy" else "array_api_compat.numpy"
        self.xp = importlib.import_module(module)

    def function(self, op: str) -> Call | None:
        xp = self.xp
        if op == "forward":
            return lambda x: naive_softmax(xp, x)
        if op == "backward":
            return lambda g, y: naive_softmax_backward(xp, g, y)
        return lambda logits, labels: naive_cross_entropy(xp, logits, labels)


# ---------------------------------------------------------------------------- direct chain


def direct_softmax(x: np.ndarray) -> np.ndarray:
    """What a NumPy user writes by hand: ndarray methods and ufuncs (SPEC section 4)."""
    e = np.exp(x - x.max(-1, keepdims=True))
    out: np.ndarray = e / e.sum(-1, keepdims=True)
    return out


def direct_softmax_backward(g: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y * (g - (g*y).sum(-1, keepdims=True))``."""
    out: np.ndarray = y * (g - (g * y).sum(-1, keepdims=True))
    return out


def direct_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[Any, np.ndarray]:
    """Mean loss and gradient: that log-softmax, a gather, ``(p - onehot) / N``."""
    shifted = logits - logits.max(-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))
    rows = np.arange(labels.shape[0])
    samples = max(1, labels.shape[0])
    loss = -logp[rows, labels].sum() / samples
    p = np.exp(logp)
    p[rows, labels] -= 1
    grad: np.ndarray = p / samples
    return loss, grad


class Direct(Impl):
    """The direct NumPy chain (CPU, NumPy arrays only): the small-input peer of SPEC 4."""

    name = "direct"
    backend = "numpy"
    threads = 1

    def function(self, op: str) -> Call | None:
        if op == "forward":
            return direct_softmax
        if op == "backward":
            return direct_softmax_backward
        return direct_cross_entropy


# ---------------------------------------------------------------------------- scipy


class Scipy(Impl):
    """``scipy.special.softmax`` (forward only: SciPy has no backward or cross-entropy)."""

    name = "scipy"

    def function(self, op: str) -> Call | None:
        if op != "forward":
            return None
        from scipy.special import softmax

        return lambda x: softmax(x, axis=-1)


# ---------------------------------------------------------------------------- torch


class Torch(Impl):
    """PyTorch on the CPU at ``threads`` threads (``None``: its default), or on CUDA."""

    def __init__(self, threads: int | None = 1, *, cuda: bool = False) -> None:
        import torch

        self.torch = torch
        self.cuda = cuda
        self.default_threads = torch.get_num_threads()
        self.threads = None if cuda else (threads or self.default_threads)
        self.backend = "torch-cuda" if cuda else "torch-cpu"
        self.device = "gpu" if cuda else "cpu"
        self.name = "torch" if cuda else f"torch-{self.threads}t"
        # after a change of thread count the first parallel calls can wait milliseconds
        # for the workers to be scheduled (on a busy machine): prime each sample
        self.prime = self.threads is not None and self.threads > 1

    def function(self, op: str) -> Call | None:
        torch = self.torch
        functional = torch.nn.functional
        if op == "forward":
            return lambda x: torch.softmax(x, dim=-1)
        if op == "backward":
            return lambda g, y: torch._softmax_backward_data(g, y, -1, y.dtype)

        def xent(logits: Any, labels: Any) -> tuple[Any, Any]:
            leaf = logits.detach().requires_grad_(True)
            loss = functional.cross_entropy(leaf, labels, reduction="mean")
            (grad,) = torch.autograd.grad(loss, leaf)
            return loss.detach(), grad

        return xent

    def convert(self, array: np.ndarray) -> Any:
        tensor = self.torch.from_numpy(array)
        return tensor.cuda() if self.cuda else tensor

    def to_numpy(self, out: Any) -> tuple[np.ndarray, ...]:
        outs = out if isinstance(out, tuple) else (out,)
        return tuple(o.detach().cpu().numpy() for o in outs)

    def enter(self) -> None:
        if not self.cuda and self.threads is not None:
            self.torch.set_num_threads(self.threads)

    def leave(self) -> None:
        if not self.cuda:
            self.torch.set_num_threads(self.default_threads)

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()


# ---------------------------------------------------------------------------- jax


class Jax(Impl):
    """``jax.nn.softmax`` under ``jax.jit`` on the CPU, waited for with block_until_ready.

    Forward only. float64 needs ``jax_enable_x64``, which the harness turns on before any
    JAX array exists. XLA uses its default thread pool (all cores)."""

    name = "jax"
    backend = "jax-cpu"
    threads = None

    def __init__(self) -> None:
        import jax

        jax.config.update("jax_enable_x64", True)  # type: ignore[no-untyped-call]
        self.jax = jax
        self.forward = jax.jit(lambda x: jax.nn.softmax(x, axis=-1))

    def function(self, op: str) -> Call | None:
        if op != "forward":
            return None
        forward = self.forward
        return lambda x: forward(x).block_until_ready()

    def convert(self, array: np.ndarray) -> Any:
        return self.jax.device_put(array).block_until_ready()


def gpu_available() -> str | None:
    """None when CuPy runs a tiny kernel on a GPU here, else the reason it does not."""
    try:
        cupy = importlib.import_module("cupy")
        if int(cupy.arange(3).sum().item()) != 3:
            return "cupy.arange(3).sum() did not give 3"
    except Exception as error:  # any failure means no usable GPU: report why
        return f"{type(error).__name__}: {error}".strip()
    return None


def optional(module: str) -> str | None:
    """None when ``module`` imports, else the reason."""
    try:
        importlib.import_module(module)
    except Exception as error:  # a broken install counts as missing
        return f"{module} not importable ({type(error).__name__}: {error})"
    return None


def build(backends: tuple[str, ...], peers: tuple[str, ...]) -> tuple[list[Impl], list[str]]:
    """The implementations to time, and notes about peers that are missing."""
    impls: list[Impl] = []
    notes: list[str] = []
    if "numpy" in backends:
        ours, ours_notes = build_ours("numpy")
        impls += ours
        notes += ours_notes
        if "direct" in peers:
            impls.append(Direct())
        if "naive" in peers:
            impls.append(Naive("numpy"))
        if "scipy" in peers:
            reason = optional("scipy.special")
            impls += [Scipy()] if reason is None else []
            notes += [f"scipy skipped: {reason}"] if reason else []
        if "torch" in peers:
            reason = optional("torch")
            if reason is None:
                one = Torch(1)
                impls.append(one)
                if one.default_threads != 1:
                    impls.append(Torch(None))
            else:
                notes.append(f"torch skipped: {reason}")
        if "jax" in peers:
            reason = optional("jax")
            impls += [Jax()] if reason is None else []
            notes += [f"jax skipped: {reason}"] if reason else []
    if "cupy" in backends:
        impls += build_ours("cupy")[0]
        if "naive" in peers:
            reason = optional("array_api_compat.cupy")
            impls += [Naive("cupy")] if reason is None else []
            notes += [f"naive chain on CuPy skipped: {reason}"] if reason else []
        if "torch" in peers:
            reason = optional("torch")
            if reason is None and _torch_cuda():
                impls.append(Torch(cuda=True))
            else:
                notes.append(
                    f"torch CUDA skipped: {reason or 'torch.cuda.is_available() is False'}"
                )
    return impls, notes


def _torch_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
