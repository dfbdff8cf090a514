"""An offline English corpus for benchmarks: the docstrings of Python's standard library."""
from __future__ import annotations

import importlib
import inspect
import warnings

_SKIP = ("antigravity", "this", "idlelib", "tkinter", "turtle", "test", "lib2to3", "ensurepip",
         "venv", "pydoc_data", "xxsubtype", "_")


def stdlib_docstring_lines(limit: int | None = None) -> list[str]:
    """Non-empty docstring lines of the importable standard-library modules, in a fixed order."""
    import sys

    lines: list[str] = []
    names = sorted(set(sys.stdlib_module_names))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in names:
            if name.startswith(_SKIP):
                continue
            try:
                module = importlib.import_module(name)
            except Exception:  # noqa: BLE001 - platform-specific modules may not import
                continue
            for _, obj in [(name, module), *sorted(vars(module).items())]:
                doc = inspect.getdoc(obj) if callable(obj) or inspect.ismodule(obj) else None
                if doc:
                    lines.extend(line.strip() for line in doc.splitlines() if line.strip())
            if limit and len(lines) >= limit:
                break
    return lines[:limit] if limit else lines
