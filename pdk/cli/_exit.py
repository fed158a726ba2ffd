"""Exit codes, in one place: 0 success; 1 the author's, user's or operator's error
(any `PdkError`: a bad package, manifest, grants file, build, scaffold, refusal, tool
error; and an interrupt); 2 an internal error (anything else: a bug to report)."""

from __future__ import annotations

import os
import sys
import traceback

from pdk._wire import safe_text
from pdk._terminal import for_terminal
from pdk.package.errors import PdkError

EXIT_OK, EXIT_USER, EXIT_INTERNAL = 0, 1, 2


def exit_code(exc: BaseException) -> int:
    """The exit code for an exception that ended a command."""
    if isinstance(exc, (PdkError, KeyboardInterrupt)):
        return EXIT_USER
    return EXIT_INTERNAL


def report(command: str, exc: BaseException) -> int:
    """Say on stderr why `pdk <command>` ended (one paragraph, control characters
    escaped: messages quote plugin and manifest text) and return its exit code."""
    code = exit_code(exc)
    if isinstance(exc, KeyboardInterrupt):
        print("pdk: interrupted", file=sys.stderr)
    elif code == EXIT_USER:
        print(f"pdk {command}: {for_terminal(safe_text(exc))}", file=sys.stderr)
    else:
        print(f"pdk {command}: internal error: {type(exc).__name__}: {for_terminal(safe_text(exc))}", file=sys.stderr)
        if os.environ.get("PDK_DEBUG"):
            traceback.print_exc()
        else:
            print("  (set PDK_DEBUG=1 for a traceback; please report it)", file=sys.stderr)
    return code
