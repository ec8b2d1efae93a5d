"""Hypothesis profiles: CI-sized by default, a long one, and a small one for GPU runs.

``ci`` (what ``nox -s tests`` uses) draws 20 examples (``default`` 30: the 5-minute budget
of the README's test command on a 2-core machine), derandomized as in Hypothesis's own ``ci``
profile: the same examples every run of the same code, so a red run
is red again on re-run, and the float32 and ``JAX_ENABLE_X64=1`` runs of a JAX check draw
the same shapes, which JAX's compilation cache then serves instead of compiling them twice.
Fresh examples come from ``default`` (plain pytest) and ``long`` (``nox -s tests-long``).

Chosen by ``--hypothesis-profile NAME`` (Hypothesis's own option) or the environment
variable ``PORTABLE_SOFTMAX_HYPOTHESIS_PROFILE``; the option wins. With ``CI`` set (as
``.ci/run`` and the CI services set it) no profile keeps an example database: a fresh machine
has none to replay, and writing one only costs time and leaves files behind.
"""

from __future__ import annotations

import os

ENV_PROFILE = "PORTABLE_SOFTMAX_HYPOTHESIS_PROFILE"


def register_profiles() -> str:
    """Register the profiles, load the one the environment names, return its name."""
    from hypothesis import HealthCheck, settings

    # Array backends are slow to start (JIT, graph building): deadlines would flake.
    common = {
        "deadline": None,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
        "print_blob": True,
    }
    if os.environ.get("CI"):
        common["database"] = None
    settings.register_profile("default", max_examples=30, **common)
    settings.register_profile("ci", max_examples=20, derandomize=True, **common)
    settings.register_profile("long", max_examples=1000, **common)
    settings.register_profile("gpu", max_examples=10, **common)
    name = os.environ.get(ENV_PROFILE, "default")
    settings.load_profile(name)
    return name
