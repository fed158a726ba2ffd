"""A component's imports and exports, read from its binary without compiling it.

Compiling an 18.7 MiB Python component takes seconds even with the fast tier; its
top-level imports and exports sit in small sections of the outer component, and
the big nested core modules can be skipped by their length. This reads only what
`pdk check` needs: the names the component imports and, for each exported
instance, the names of the functions it exports. It follows the Component Model
binary format (preamble, then `id:byte size:u32 contents` sections):

- section 10 (import) and 11 (export) give the top-level names;
- an exported instance comes from section 5 - either inline exports (`0x01`) or the
  instantiation (`0x00`) of a nested component (section 4), whose own exports name
  the functions - or from an import or an alias (section 6) of another instance;
- every import, alias, instance definition and export adds an index to its sort's
  index space, which is how a `sortidx` is resolved.

This is a structural reading, not validation: a binary whose framing is broken is
refused with a bounded `ComponentFormatError`, but a well-framed component with,
say, an invalid function body is only found when wasmtime compiles it (the host
always compiles before it runs anything). Nothing here runs plugin code.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MAGIC = b"\x00asm"
COMPONENT_VERSION = b"\x0d\x00"
COMPONENT_LAYER = b"\x01\x00"
NESTING_MAX = 8  # nested components are followed this deep (componentize-py uses 1)

_SEC_CUSTOM, _SEC_CORE_MODULE, _SEC_CORE_INSTANCE, _SEC_CORE_TYPE = 0, 1, 2, 3
_SEC_COMPONENT, _SEC_INSTANCE, _SEC_ALIAS, _SEC_TYPE, _SEC_CANON = 4, 5, 6, 7, 8
_SEC_START, _SEC_IMPORT, _SEC_EXPORT, _SEC_VALUE = 9, 10, 11, 12

# Sorts (the byte after a core-sort prefix 0x00 is the core sort).
SORT_CORE, SORT_FUNC, SORT_VALUE, SORT_TYPE, SORT_COMPONENT, SORT_INSTANCE = 0, 1, 2, 3, 4, 5


class ComponentFormatError(ValueError):
    """The bytes are not a well-framed WebAssembly component (message is bounded)."""


@dataclass
class _InstanceInfo:
    """What is known about one component instance: its exports as (name, sort), or
    None when they cannot be known statically (an imported instance's type is not read)."""

    exports: list[tuple[str, int]] | None


@dataclass
class ComponentOutline:
    """A component's top-level imports and exports.

    `exports` maps each export name to its sort and, for an instance, the names it
    exports with their sorts (None when unknown)."""

    imports: list[tuple[str, int]] = field(default_factory=list)
    exports: list[tuple[str, int, list[tuple[str, int]] | None]] = field(default_factory=list)

    def export_items(self) -> list[tuple[str, int]]:
        return [(name, sort) for name, sort, _ in self.exports]


class _Reader:
    def __init__(self, data: memoryview, start: int, end: int) -> None:
        self.data = data
        self.pos = start
        self.end = end

    def fail(self, what: str) -> ComponentFormatError:
        return ComponentFormatError(f"malformed component at byte {self.pos}: {what}")

    def byte(self) -> int:
        if self.pos >= self.end:
            raise self.fail("unexpected end of section")
        b = self.data[self.pos]
        self.pos += 1
        return b

    def u32(self) -> int:
        result = shift = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if b < 0x80:
                break
            shift += 7
            if shift > 28:
                raise self.fail("integer too long")
        if result > 0xFFFFFFFF:
            raise self.fail("integer out of range")
        return result

    def skip_leb(self) -> None:
        for _ in range(10):
            if self.byte() < 0x80:
                return
        raise self.fail("integer too long")

    def take(self, n: int) -> memoryview:
        if n > self.end - self.pos:
            raise self.fail("length runs past the end")
        view = self.data[self.pos : self.pos + n]
        self.pos += n
        return view

    def string(self) -> str:
        raw = self.take(self.u32())
        try:
            return bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("name is not UTF-8") from None

    def extern_name(self) -> str:
        kind = self.byte()
        if kind == 0x00:
            return self.string()
        if kind == 0x01:  # name followed by a version suffix
            name = self.string()
            self.string()
            return name
        raise self.fail(f"unknown name kind 0x{kind:02x}")

    def sort(self) -> int:
        s = self.byte()
        if s == SORT_CORE:
            self.byte()
        elif s > SORT_INSTANCE:
            raise self.fail(f"unknown sort 0x{s:02x}")
        return s

    def extern_desc(self) -> int:
        """Skip an externdesc; return its sort."""
        kind = self.byte()
        if kind == 0x00:  # core module: 0x11 typeidx
            self.byte()
            self.u32()
            return SORT_CORE
        if kind in (0x01, 0x04, 0x05):  # func / component / instance: typeidx
            self.u32()
            return {0x01: SORT_FUNC, 0x04: SORT_COMPONENT, 0x05: SORT_INSTANCE}[kind]
        if kind == 0x02:  # value: 0x00 valueidx | 0x01 valtype
            self.byte()
            self.skip_leb()
            return SORT_VALUE
        if kind == 0x03:  # type bound: 0x00 typeidx (eq) | 0x01 (sub resource)
            if self.byte() == 0x00:
                self.u32()
            return SORT_TYPE
        raise self.fail(f"unknown extern kind 0x{kind:02x}")

    def count(self, per_item_min: int = 1) -> int:
        n = self.u32()
        if n * per_item_min > self.end - self.pos:
            raise self.fail("count larger than the section")
        return n


class _Scope:
    """The index spaces of one component that this reader resolves."""

    def __init__(self) -> None:
        self.instances: list[_InstanceInfo] = []
        self.components: list[ComponentOutline | None] = []  # None: imported or aliased, not read
        self.outline = ComponentOutline()


def _parse(data: memoryview, start: int, end: int, depth: int) -> ComponentOutline:
    r = _Reader(data, start, end)
    if bytes(r.take(4)) != MAGIC:
        raise r.fail("not WebAssembly (bad magic)")
    version, layer = bytes(r.take(2)), bytes(r.take(2))
    if layer != COMPONENT_LAYER:
        raise r.fail("a core module, not a component" if layer == b"\x00\x00" else "unknown layer")
    if version != COMPONENT_VERSION:
        raise r.fail(f"unsupported component version 0x{version.hex()}")
    scope = _Scope()
    while r.pos < r.end:
        section = r.byte()
        size = r.u32()
        body_start = r.pos
        r.take(size)
        body = _Reader(data, body_start, body_start + size)
        if section == _SEC_COMPONENT:
            if depth >= NESTING_MAX:
                raise body.fail("components nested too deeply")
            scope.components.append(_parse(data, body_start, body_start + size, depth + 1))
        elif section == _SEC_IMPORT:
            _read_imports(body, scope)
        elif section == _SEC_EXPORT:
            _read_exports(body, scope)
        elif section == _SEC_INSTANCE:
            _read_instances(body, scope)
        elif section == _SEC_ALIAS:
            _read_aliases(body, scope)
        elif section > _SEC_VALUE:
            raise body.fail(f"unknown section id {section}")
        # Other sections (core modules, core instances, types, canon, custom) add no
        # component instances or components and are skipped by their length.
    return scope.outline


def _add(scope: _Scope, sort: int, instance: _InstanceInfo | None = None, component: ComponentOutline | None = None) -> None:
    if sort == SORT_INSTANCE:
        scope.instances.append(instance or _InstanceInfo(None))
    elif sort == SORT_COMPONENT:
        scope.components.append(component)


def _instance(r: _Reader, scope: _Scope, index: int) -> _InstanceInfo:
    if index >= len(scope.instances):
        raise r.fail(f"instance index {index} out of range")
    return scope.instances[index]


def _read_imports(r: _Reader, scope: _Scope) -> None:
    for _ in range(r.count(3)):
        name = r.extern_name()
        sort = r.extern_desc()
        scope.outline.imports.append((name, sort))
        _add(scope, sort)
    _expect_end(r)


def _read_exports(r: _Reader, scope: _Scope) -> None:
    for _ in range(r.count(3)):
        name = r.extern_name()
        sort = r.sort()
        index = r.u32()
        if r.byte() == 0x01:  # an optional type ascription
            r.extern_desc()
        info: _InstanceInfo | None = None
        component: ComponentOutline | None = None
        if sort == SORT_INSTANCE:
            info = _instance(r, scope, index)
        elif sort == SORT_COMPONENT:
            if index >= len(scope.components):
                raise r.fail(f"component index {index} out of range")
            component = scope.components[index]
        scope.outline.exports.append((name, sort, None if info is None or info.exports is None else list(info.exports)))
        _add(scope, sort, info, component)
    _expect_end(r)


def _read_instances(r: _Reader, scope: _Scope) -> None:
    for _ in range(r.count(2)):
        kind = r.byte()
        if kind == 0x00:  # instantiate a component with arguments
            index = r.u32()
            for _ in range(r.count(3)):
                r.string()
                r.sort()
                r.u32()
            if index >= len(scope.components):
                raise r.fail(f"component index {index} out of range")
            nested = scope.components[index]
            scope.instances.append(_InstanceInfo(None if nested is None else nested.export_items()))
        elif kind == 0x01:  # inline exports
            exports = []
            for _ in range(r.count(3)):
                name = r.extern_name()
                sort = r.sort()
                r.u32()
                exports.append((name, sort))
            scope.instances.append(_InstanceInfo(exports))
        else:
            raise r.fail(f"unknown instance kind 0x{kind:02x}")
    _expect_end(r)


def _read_aliases(r: _Reader, scope: _Scope) -> None:
    for _ in range(r.count(3)):
        sort = r.sort()
        target = r.byte()
        if target == 0x00:  # export `name` of instance i
            _instance(r, scope, r.u32())
            r.string()
        elif target == 0x01:  # core export
            r.u32()
            r.string()
        elif target == 0x02:  # outer
            r.u32()
            r.u32()
        else:
            raise r.fail(f"unknown alias target 0x{target:02x}")
        # An aliased instance's or component's exports are not followed (not needed
        # for the top level of componentize-py components): they count as unknown.
        _add(scope, sort)
    _expect_end(r)


def _expect_end(r: _Reader) -> None:
    if r.pos != r.end:
        raise r.fail("section has trailing bytes")


def read_outline(data: bytes | bytearray | memoryview) -> ComponentOutline:
    """The top-level imports and exports of a component binary.

    Raises `ComponentFormatError` when the bytes are not a well-framed component."""
    view = memoryview(data)
    if len(view) < 8:
        raise ComponentFormatError("not WebAssembly (shorter than the 8-byte preamble)")
    return _parse(view, 0, len(view), 0)
