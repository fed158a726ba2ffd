"""The `pdk` command line: build, check, pack and call plugins.

Exit codes everywhere: 0 success, 1 the author's or user's error (bad input, tool
error, refusal), 2 an internal error."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from typing import Sequence

from . import _new, _plugin_cmds, _runtime_cmds, _upgrade

EXIT_OK, EXIT_USER, EXIT_INTERNAL = 0, 1, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdk", description="Build, check, pack and run Yoi plugins written in Python.")
    parser.add_argument("--version", action=_upgrade.VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="build the plugin's component with componentize-py")
    p.add_argument("dir", nargs="?", default=".")
    p.add_argument("--check", action="store_true", help="change nothing; fail if plugin.toml or the component is out of date")
    p.add_argument("--force", action="store_true", help="rebuild even when nothing changed")
    p.add_argument("--precompile", action="store_true", help="also compile the optimized (Cranelift) code into the compile cache now")
    p.add_argument("--json", action="store_true", help="print a JSON document")
    p.set_defaults(func=_plugin_cmds.cmd_build)

    p = sub.add_parser("check", help="validate a plugin directory or .yoi-plugin statically")
    p.add_argument("path", nargs="?", default=".")
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
    p.add_argument("--json", action="store_true", help="print the ToolOutput or error document as JSON")
    p.add_argument("--deadline", type=float, default=None, help="per-call deadline in seconds (default 2)")
    p.add_argument("--memory-mib", type=int, default=None, help="memory cap in MiB (default 64)")
    p.set_defaults(func=_plugin_cmds.cmd_call)

    _new.add_parser(sub)
    _upgrade.add_parser(sub)
    _runtime_cmds.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        print("pdk: interrupted", file=sys.stderr)
        return EXIT_USER
    except _plugin_cmds.UserError as exc:
        print(f"pdk {args.command}: {exc}", file=sys.stderr)
        return EXIT_USER
    except Exception as exc:  # an internal error: say so, briefly
        print(f"pdk {args.command}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        if os.environ.get("PDK_DEBUG"):
            traceback.print_exc()
        else:
            print("  (set PDK_DEBUG=1 for a traceback; please report it)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
