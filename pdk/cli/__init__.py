"""The `pdk` command line: build, check, pack and call plugins.

Exit codes everywhere: 0 success, 1 the author's or user's error (bad input, tool
error, refusal), 2 an internal error."""

from __future__ import annotations

import argparse
import atexit
import os
import sys
from typing import NoReturn, Sequence

from pdk._terminal import TerminalStream

from . import _dev, _exit, _new, _plugin_cmds, _runtime_cmds, _upgrade
from ._exit import EXIT_INTERNAL, EXIT_OK, EXIT_USER

__all__ = ["EXIT_INTERNAL", "EXIT_OK", "EXIT_USER", "main", "run"]

_OWN_TERMINAL = frozenset({"new", "upgrade"})

# Issue 11, family 10: building imports the plugin module in a normal CPython child.
BUILD_SECURITY_NOTE = (
    "Build the plugin's component with componentize-py. Security: building imports the "
    "project's Python code in a normal, unsandboxed Python process to introspect it, so "
    "building an untrusted project runs its code on your machine (like `pip install` of an "
    "sdist). `pdk check`, `pdk call` and `pdk run` of a built component do not: they only "
    "run it inside the WebAssembly sandbox."
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdk", description="Build, check, pack and run Yoi plugins written in Python.")
    parser.add_argument("--version", action=_upgrade.VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "build",
        help="build the plugin's component with componentize-py (runs the project's code on this machine)",
        description=BUILD_SECURITY_NOTE,
    )
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="the plugin project directory (with plugin.toml; default: the current directory)")
    p.add_argument("--check", action="store_true", help="change nothing; fail if plugin.toml or the component is out of date")
    p.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    p.add_argument("--precompile", action="store_true", help="also compile the optimized (Cranelift) code into the compile cache now")
    p.add_argument("--json", action="store_true", help="print a JSON document")
    p.set_defaults(func=_plugin_cmds.cmd_build)

    p = sub.add_parser("check", help="validate a plugin directory or .yoi-plugin statically")
    p.add_argument("path", nargs="?", default=".", metavar="DIR|PKG", help="a plugin project directory or a .yoi-plugin archive (default: the current directory)")
    p.add_argument("--grants", default=None, metavar="FILE", help="also show how this grants file covers what the manifest declares")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_plugin_cmds.cmd_check)

    p = sub.add_parser("pack", help="write a deterministic .yoi-plugin archive")
    p.add_argument("dir", nargs="?", default=".")
    p.add_argument("-o", "--output", default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_plugin_cmds.cmd_pack)

    p = sub.add_parser("call", help="call one tool of a plugin in the reference host")
    p.add_argument("path", help="plugin directory or .yoi-plugin archive")
    p.add_argument("tool")
    p.add_argument("input", nargs="?", default="{}", help="input JSON, or @FILE (default {})")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--grants", default=None, help="grants file (TOML)")
    g.add_argument("--dev-grants", action="store_true", help="grant exactly what plugin.toml declares (development only)")
    p.add_argument("--json", action="store_true", help="print the ToolOutput or error document as JSON, with the plugin's \"logs\"")
    p.add_argument("-q", "--quiet", action="store_true", help="do not show the plugin's log records and stdout/stderr (shown on stderr after the result)")
    p.add_argument("--deadline", type=float, default=None, help="per-call deadline in seconds (default 2)")
    p.add_argument("--memory-mib", type=int, default=None, help="memory cap in MiB (default 64)")
    p.set_defaults(func=_plugin_cmds.cmd_call)

    _new.add_parser(sub)
    _upgrade.add_parser(sub)
    _runtime_cmds.add_parsers(sub)
    _dev.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Human output shows plugin- and manifest-supplied text with its control characters
    # escaped (pdk._terminal); JSON output stays exact, and `new`/`upgrade` hand the
    # terminal to copier's prompts.
    guard = not getattr(args, "json", False) and args.command not in _OWN_TERMINAL
    stdout = sys.stdout
    if guard:
        sys.stdout = TerminalStream(stdout)
    try:
        code: int = args.func(args)
        return code
    except BaseException as exc:  # exit codes for every failure: pdk.cli._exit
        if isinstance(exc, SystemExit):
            raise
        return _exit.report(args.command, exc)
    finally:
        if guard:
            sys.stdout.flush()
            sys.stdout = stdout


def run() -> NoReturn:
    """The `pdk` command: `main()`, the exit handlers, then an exit without the
    interpreter's teardown.

    wasmtime's own threads (the WASI stdio of a plugin's store is served by a tokio
    pool) may call back into Python while the interpreter finalizes; CPython then ends
    such a thread with pthread_exit, and unwinding through wasmtime's frames aborts the
    process (exit status -6 after correct output). The exit handlers still run first
    (pdk/host/host.py closes every open host in one), so nothing is left unflushed."""
    try:
        code: int = main()
    except SystemExit as exc:  # argparse's usage errors, --help, --version
        if isinstance(exc.code, int) or exc.code is None:
            code = exc.code or 0
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


if __name__ == "__main__":
    run()
