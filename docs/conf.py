"""Sphinx configuration: Markdown pages (MyST) and the API reference from numpydoc docstrings.

Built by ``nox -s docs`` (HTML with warnings as errors, the doctests, and the check that
every public name is documented); the output goes to ``docs/_build/``.
"""

from __future__ import annotations

import portable_softmax

project = "portable-softmax"
author = "the portable-softmax developers"
copyright = "2026, the portable-softmax developers"
version = release = portable_softmax.__version__

extensions = [
    "myst_parser",
    "numpydoc",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# The Markdown pages link to headings within and across pages (README.md's "#semantics").
myst_heading_anchors = 3

# One stub page per public name, generated from docs/api.rst's lists into docs/generated/
# (classes with their methods: _templates/autosummary/class.rst).
autosummary_generate = True
templates_path = ["_templates"]
autodoc_typehints = "none"  # the numpydoc Parameters sections say the types
# The layers' methods are documented in full on their class pages (the template above); the
# member tables numpydoc would add would only repeat them.
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()

html_theme = "alabaster"
html_title = f"portable-softmax {release}"
html_theme_options = {"description": "softmax, written once for every array library"}
