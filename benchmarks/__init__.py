"""Side-by-side benchmarks of portable_softmax against its peers and the hardware floors.

``python -m benchmarks`` times the forward pass (softmax), the backward pass
(softmax_backward) and cross-entropy (loss plus gradient) on NumPy and, where a GPU runs, on
CuPy, next to the naive array-API chain, SciPy, PyTorch and JAX, and next to the copy and
compute floors measured in the same run. ``python -m benchmarks.gpu`` is the GPU session:
the conformance suite on CuPy, then the GPU-vs-CPU benchmark. See ``benchmarks/README.md``.
"""
