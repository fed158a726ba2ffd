"""The `pdk` subcommands that work on one plugin: build, check, pack, call. Each
returns an exit code; known failures raise `UserError` (exit 1) with a one-line
message, never a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from pdk._terminal import for_terminal
from pdk.package.errors import PdkError

from ._exit import EXIT_OK, EXIT_USER


class UserError(PdkError):
    """A failure the user can fix; printed as one paragraph, exit code 1."""

    default_code = "usage"


def _print_json(doc: Any) -> None:
    print(json.dumps(doc, indent=2, ensure_ascii=False, allow_nan=False))  # valid JSON or nothing


def progress_renderer() -> Any:
    """Progress of slow steps, on stderr (a live line on a TTY, start and end lines elsewhere)."""
    from pdk.host.progress import StreamRenderer

    return StreamRenderer(sys.stderr)


def cmd_build(args: argparse.Namespace) -> int:
    from generator.build import build
    from generator.diagnose import BuildError

    try:
        result = build(args.dir, check_only=args.check, force=args.force, progress=progress_renderer())
        if getattr(args, "precompile", False) and not args.check:
            from pdk.host.compiler import precompile_package

            precompile_package(args.dir, progress=progress_renderer())
    except BuildError as exc:
        if args.json:
            _print_json({"ok": False, "error": {"kind": exc.kind, "message": exc.message}})
            return EXIT_USER
        raise UserError(exc.message) from None
    warnings = build_warnings(result.component)
    if args.json:
        _print_json({"ok": True, **result.to_json(), "warnings": warnings})
    else:
        for warning in warnings:
            print(for_terminal(f"pdk build: warning: {warning}"), file=sys.stderr)
        state = "up to date" if result.cached else "built"
        if args.check:
            state = "up to date; plugin.toml agrees with the code"
        print(f"{result.component}: {state} ({result.size / 1048576:.1f} MiB, world {result.world}, {result.seconds:.2f}s)")
        if result.manifest_updated:
            print(f"plugin.toml: updated [[tools]] ({', '.join(result.tools)})")
    return EXIT_OK


def build_warnings(component: Path) -> list[str]:
    """The warnings of the build that made `component` (the introspection's, kept in
    its build record `<component>.build.json`, so an up-to-date build repeats them)."""
    try:
        record = json.loads(component.with_name(component.name + ".build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = (record.get("info") or {}).get("warnings") if isinstance(record, dict) else None
    return [str(w) for w in found] if isinstance(found, list) else []


def cmd_check(args: argparse.Namespace) -> int:
    from generator.check import check, render_human

    report = check(args.path, grants=args.grants)
    if args.json:
        _print_json(report.to_json())
    else:
        print(render_human(report))
    return EXIT_OK if report.ok else EXIT_USER


def cmd_pack(args: argparse.Namespace) -> int:
    from generator.pack import pack
    from pdk.package import PackageError

    try:
        result = pack(args.dir, args.output)
    except PackageError as exc:
        raise UserError(str(exc)) from None
    if args.json:
        _print_json({"ok": True, "path": str(result.path), "digest": result.digest, "files": list(result.files), "bytes": result.size})
    else:
        print(f"{result.path}: {len(result.files)} files, {result.size / 1048576:.1f} MiB")
        print(f"digest: {result.digest}")
    return EXIT_OK


def _read_input(raw: str) -> str:
    if raw.startswith("@"):
        path = Path(raw[1:])
        try:
            raw = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"cannot read input file {path}: {exc}") from None
    try:
        json.loads(raw)
    except ValueError as exc:
        raise UserError(f"input is not valid JSON: {exc} (pass a JSON object, e.g. '{{\"text\": \"hi\"}}', or @file.json)") from None
    return raw


def _load_plugin(host: Any, args: argparse.Namespace) -> Any:
    from pdk.host import GrantsError, PluginRefused
    from pdk.package import PackageError
    from pdk.package.manifest import ManifestError

    try:
        return host.load(args.path, grants=args.grants, dev_grants=args.dev_grants)
    except (ManifestError, PackageError, GrantsError) as exc:
        raise UserError(str(exc)) from None
    except PluginRefused as exc:
        raise UserError(f"refused: {exc}") from None


def guest_logs(diagnostics: Any, mark: int) -> tuple[list[dict[str, Any]], int]:
    """The plugin's own records (log import, stdout, stderr) added since `mark`, as
    JSON, and how many records since then the bounded ring no longer holds."""
    from pdk.host.diagnostics import GUEST_SOURCES

    return [r.to_json() for r in diagnostics.since(mark, GUEST_SOURCES)], diagnostics.dropped_since(mark)


def print_logs(logs: list[dict[str, Any]], dropped: int = 0) -> None:
    """The plugin's log lines on stderr, control characters escaped."""
    from ._runtime_view import log_lines

    for line in log_lines(logs, dropped):
        print(for_terminal(line), file=sys.stderr)


def cmd_call(args: argparse.Namespace) -> int:
    from pdk.host import Host, InstanceLimits

    raw = _read_input(args.input)
    from ._dev import serve_call

    served = serve_call(args, raw)  # `pdk dev` of this directory is running: it answers
    if served is not None:
        return served
    limits = InstanceLimits(
        deadline_s=args.deadline or InstanceLimits().deadline_s,
        memory_bytes=(args.memory_mib * 1048576) if args.memory_mib else InstanceLimits().memory_bytes,
    )
    # Dev-time: fast-tier code at once; optimized code compiled by a detached process.
    with Host(limits=limits, compile="tiered", upgrade="process", progress=progress_renderer()) as host:
        plugin = _load_plugin(host, args)
        mark = plugin.diagnostics.mark()
        result = plugin.call_tool(args.tool, raw)
        logs, dropped = guest_logs(plugin.diagnostics, mark)
    if args.json:
        _print_json({**result.to_json(), "logs": logs})
    elif result.ok:
        print(result.summary)
        compact = json.dumps(result.content, separators=(",", ":"), ensure_ascii=False)
        if result.content is not None and compact not in result.summary:
            print(json.dumps(result.content, indent=2, ensure_ascii=False, allow_nan=False))
    else:
        assert result.error is not None
        print(f"tool error ({result.error.code.value}): {for_terminal(result.error.message)}", file=sys.stderr)
    if not args.json and not getattr(args, "quiet", False):
        print_logs(logs, dropped)
    return EXIT_OK if result.ok else EXIT_USER
