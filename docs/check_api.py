"""Fail when a public name of ``portable_softmax.__all__`` is missing from the built API reference.

Run after the HTML build (``nox -s docs`` does): ``python docs/check_api.py [HTML_DIR]``,
default ``docs/_build/html``. It reads Sphinx's object inventory (``objects.inv``) and
requires, for every name in ``__all__``, a documented Python object
``portable_softmax.<name>`` on the API reference page or one of its generated pages. The
list comes from ``__all__`` itself, so a name added there without its line in
``docs/api.rst`` fails the docs session.
"""

from __future__ import annotations

import sys
import zlib
from pathlib import Path

import portable_softmax

API_PAGES = ("api.html", "generated/")


def inventory(html_dir: Path) -> dict[str, str]:
    """``{object name: page}`` of the Python objects in Sphinx's ``objects.inv`` (format 2)."""
    raw = (html_dir / "objects.inv").read_bytes()
    header_end = 0
    for _ in range(4):  # "# Sphinx inventory version 2", project, version, compression note
        header_end = raw.index(b"\n", header_end) + 1
    entries: dict[str, str] = {}
    for line in zlib.decompress(raw[header_end:]).decode("utf-8").splitlines():
        # name domain:role priority uri display-name (the name itself may hold spaces)
        name, rest = line.split(" py:", 1) if " py:" in line else ("", "")
        if not name:
            continue
        fields = rest.split(" ")
        entries[name] = fields[2].split("#", 1)[0]
    return entries


def missing_names(html_dir: Path) -> list[str]:
    """The names of ``portable_softmax.__all__`` that the API reference does not document."""
    documented = inventory(html_dir)
    missing = []
    for name in portable_softmax.__all__:
        page = documented.get(f"portable_softmax.{name}")
        if page is None or not page.startswith(API_PAGES):
            missing.append(name)
    return missing


def main(argv: list[str]) -> int:
    html_dir = Path(argv[1]) if len(argv) > 1 else Path("docs/_build/html")
    missing = missing_names(html_dir)
    if missing:
        print(
            f"docs: {len(missing)} public name(s) of portable_softmax.__all__ missing from the "
            f"API reference: {', '.join(missing)}. Add each to its list in docs/api.rst.",
            file=sys.stderr,
        )
        return 1
    print(f"docs: all {len(portable_softmax.__all__)} public names are in the API reference")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
