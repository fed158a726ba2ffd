"""`pdk upgrade [DIR] [--to VERSION] [--templates DIR]`, and `pdk --version`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Sequence

from ._exit import EXIT_OK, EXIT_USER
from ._plugin_cmds import UserError


def add_parser(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    p = sub.add_parser(
        "upgrade",
        help="apply a newer template version to a project (copier's three-way merge)",
        description="Apply a newer version of the templates shipped with this yoi-pdk to a project made by "
        "`pdk new` or `copier copy`: your edits are kept, the template's changes applied, and a clash is "
        "marked in the file as copier marks it (<<<<<<< before updating ... >>>>>>> after updating). "
        "The project must be committed in git; review the result with `git diff`.",
    )
    p.add_argument("dir", nargs="?", default=".", help="the project's directory (default: .)")
    p.add_argument("--to", default=None, metavar="VERSION", help="the template version to upgrade to (default: the newest)")
    p.add_argument("--templates", default=None, metavar="DIR", help="a templates folder to upgrade from, with its _versions/ (default: the installed yoi-pdk's)")
    p.set_defaults(func=cmd_upgrade)


class VersionAction(argparse.Action):
    """`pdk --version`: the package's version and the templates' version."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, help="print the yoi-pdk and template versions and exit", **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any, option_string: str | None = None) -> None:
        print(version_text())
        parser.exit()


def version_text() -> str:
    import importlib.metadata

    from generator.scaffold import template_version

    try:
        package = importlib.metadata.version("yoi-pdk")
    except importlib.metadata.PackageNotFoundError:
        from pdk import __version__ as package
    return f"pdk (yoi-pdk) {package}, templates {template_version()}"


def cmd_upgrade(args: argparse.Namespace) -> int:
    from generator.upgrade import UpgradeError, upgrade_project

    templates = Path(args.templates) if args.templates else None
    try:
        result = upgrade_project(args.dir, to=args.to, templates=templates)
    except UpgradeError as exc:
        raise UserError(str(exc)) from None
    if result.up_to_date:
        print(f"{result.project}: already at template version {result.to_version} ({result.kind}); nothing to do")
        return EXIT_OK
    print(f"upgraded {result.project} ({result.kind}) from template version {result.from_version} to {result.to_version}")
    clean = [p for p in result.changed if p not in result.conflicts]
    if clean:
        print(f"  changed: {', '.join(clean)}")
    if result.changelog:
        print("  what changed, from the templates' CHANGELOG.md:")
        for line in result.changelog.splitlines():
            print(f"    {line}" if line else "")
    if result.conflicts:
        print(f"  conflicts in: {', '.join(result.conflicts)}", file=sys.stderr)
        print("  resolve each <<<<<<< before updating / >>>>>>> after updating block (keep what you want, delete the markers), then review with `git diff`, run pytest and commit", file=sys.stderr)
        return EXIT_USER
    print("next: review with `git diff`, run `pytest`, then commit")
    return EXIT_OK
