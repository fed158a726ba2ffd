"""The engine of JSON Schema `pattern`s in the host: RE2 (google-re2), linear time.

A schema `pattern` comes from the plugin's own manifest, so it is untrusted: with a
backtracking engine (Python's `re`) `^(a+)+$` takes seconds on 27 characters and holds
the GIL. RE2 matches in time linear in the input whatever the pattern, so the host
evaluates every `pattern` (and `patternProperties`) with it (`pdk.host.schema_check`).

JSON Schema patterns are ECMA-262 regular expressions. RE2's syntax agrees on the common
subset: literals, `.`, classes `[...]`, anchors `^ $`, groups `(...)` and `(?:...)`,
alternation, `* + ? {n,m}` (and their lazy forms), `\\d \\w \\s \\b` (ASCII, as in
ECMA-262), `\\uXXXX`-free Unicode literals and `(?i)`. It has no backreferences (`\\1`)
and no lookaround (`(?=`, `(?!`, `(?<=`, `(?<!`), which only a backtracking engine can
run: a pattern RE2 cannot compile is refused when the manifest is read (`pdk check`,
`Host.load`) as a manifest problem at the pattern's path, never at call time. Known
differences that remain: `.` matches one code point (ECMA-262: one UTF-16 unit), and
`\\p{...}` classes follow RE2's names.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

__all__ = ["CompiledPattern", "PatternError", "compile_pattern", "pattern_problem"]


class CompiledPattern(Protocol):
    def search(self, text: str) -> object | None: ...


class PatternError(ValueError):
    """A pattern RE2 cannot run; `str()` says why, briefly."""


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refusal on stderr
    return options


_OPTIONS = _options()


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> CompiledPattern:
    """The compiled RE2 program for `pattern`, or `PatternError`."""
    try:
        compiled: CompiledPattern = re2.compile(pattern, options=_OPTIONS)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise PatternError(str(reason)) from None
    except (TypeError, ValueError) as exc:
        raise PatternError(f"{type(exc).__name__}: {exc}") from None
    return compiled


def pattern_problem(pattern: Any) -> str | None:
    """Why `pattern` cannot be a schema pattern here, or None."""
    if not isinstance(pattern, str):
        return "must be a string (a regular expression)"
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        return (
            f"cannot be evaluated in linear time (RE2: {exc}); backreferences and "
            "lookaround are not supported in schema patterns"
        )
    return None
