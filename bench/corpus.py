"""An offline English corpus for benchmarks: the docstrings of Python's standard library.

The corpus code lives in the library (`bert_tf.data.demo`, also behind `make demo`); this module
keeps the benchmarks' `from corpus import stdlib_docstring_lines` working.
"""
from __future__ import annotations

from bert_tf.data.demo import stdlib_docstring_lines

__all__ = ["stdlib_docstring_lines"]
