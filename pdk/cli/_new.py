"""`pdk new {tool,service,ingress} DEST [--data KEY=VALUE]... [--defaults] [--force]`."""

from __future__ import annotations

import argparse
import sys

from pdk._contract import PLUGIN_KINDS

from ._exit import EXIT_OK
from ._plugin_cmds import UserError


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "new",
        help="create a plugin project from the copier templates",
        description="Create a plugin project from yoi-pdk's copier templates (the same as "
        "`copier copy <templates> DEST --data plugin_kind=KIND`).",
    )
    p.add_argument("kind", choices=PLUGIN_KINDS)
    p.add_argument("dest", help="the new project's directory (must be empty or missing)")
    p.add_argument("--data", "-d", action="append", default=[], metavar="KEY=VALUE", help="answer a template question (repeatable)")
    p.add_argument("--defaults", action="store_true", help="take the default of every question not answered with --data")
    p.add_argument("--force", action="store_true", help="write into a non-empty directory, overwriting files with the same names")
    p.set_defaults(func=cmd_new)


def _parse_data(pairs: list[str]) -> dict[str, str]:
    data: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--data {pair!r}: expected KEY=VALUE")
        data[key.strip()] = value
    return data


def cmd_new(args: argparse.Namespace) -> int:
    from generator.scaffold import ScaffoldError, new_project

    data = _parse_data(args.data)
    defaults = args.defaults
    if not defaults and not sys.stdin.isatty():
        print("pdk new: stdin is not a terminal; using the defaults for questions not given with --data", file=sys.stderr)
        defaults = True
    try:
        result = new_project(args.kind, args.dest, data, defaults=defaults, force=args.force)
    except ScaffoldError as exc:
        raise UserError(str(exc)) from None
    plugin_id = result.answers.get("plugin_id", "?")
    print(f"created {result.path}: {result.kind} plugin {plugin_id!r}")
    print(f"next: cd {result.path} && pdk build && pdk check && pytest   (see its README.md)")
    return EXIT_OK
