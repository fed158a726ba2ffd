"""Minimal components of the `tool` and `service` worlds, built without the PDK.

The benches use them as floors: the same contract, the same wasmtime and the same
componentize-py as a PDK-built plugin, but guest code that does next to nothing
(no input decoding, schema, state or command encoding by the PDK). The difference
between a PDK plugin and these is the PDK's guest cost; the difference between the
host's call and the raw call of the same component is the host's cost.

    build_minimal("tool", directory)   -> a plugin directory (plugin.toml + build/)

Each directory is a loadable plugin package (a `plugin.toml` whose tool and
ingress match the example plugins the benches compare with), so `Host.load` runs
it too.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPONENTIZE_PY = Path(sys.executable).with_name("componentize-py")

_TOOL_APP = '''
"""A `tool` world guest: `call` answers every tool call with a fixed output."""
import wit_world
import wit_world.exports
from wit_world.imports import types


class Tools(wit_world.exports.Tools):
    def call(self, call: types.ToolCall) -> types.ToolOutput:
        return types.ToolOutput(summary="ok", content_json='{"words": 9}')
'''

_SERVICE_APP = '''
"""A `service` world guest: `handle` returns one emit command, as the issue's floor."""
import wit_world
import wit_world.exports
from wit_world.imports import types


class Lifecycle(wit_world.exports.Lifecycle):
    def start(self, config_json: str) -> types.PluginStatus:
        return types.PluginStatus(healthy=True, data_json=None)

    def status(self) -> types.PluginStatus:
        return types.PluginStatus(healthy=True, data_json=None)

    def stop(self) -> types.PluginStatus:
        return types.PluginStatus(healthy=True, data_json=None)


class Events(wit_world.exports.Events):
    def handle(self, event: types.Event) -> types.ServiceOutput:
        emit = types.CommandKind_Emit(types.Emit(topic="counted", data_json='{"count": 1}'))
        return types.ServiceOutput(data_json=None, commands=[types.Command(id="c1", kind=emit)])
'''

_TOOL_MANIFEST = '''
schema_version = 2
id = "minimal-tool"
name = "Minimal tool"
version = "0.1.0"
description = "A bench floor: a tool world guest built without the PDK."
surfaces = ["tools"]
host_apis = ["log"]

[runtime]
kind = "wasm-component"
world = "tool"
component = "build/minimal_tool.wasm"

[build]
module = "app"

[[tools]]
name = "text_stats"
description = "Answers every call with a fixed output."

[tools.input_schema]
type = "object"
required = ["text"]
additionalProperties = false

[tools.input_schema.properties]
text = {type = "string"}
top = {type = "integer", default = 3}
case_sensitive = {type = "boolean", default = false}
'''

_SERVICE_MANIFEST = '''
schema_version = 2
id = "minimal-service"
name = "Minimal service"
version = "0.1.0"
description = "A bench floor: a service world guest built without the PDK."
surfaces = ["services", "ingresses"]
host_apis = ["log"]

[runtime]
kind = "wasm-component"
world = "service"
component = "build/minimal_service.wasm"

[build]
module = "app"

[[services]]
name = "counter"
description = "Counts nothing."

[[ingresses]]
name = "inbox"
description = "Messages."
sources = ["manual"]
event_kinds = ["message"]
max_attempts = 3
'''

_GUESTS = {
    "tool": (_TOOL_APP, _TOOL_MANIFEST, "minimal_tool.wasm"),
    "service": (_SERVICE_APP, _SERVICE_MANIFEST, "minimal_service.wasm"),
}


def build_minimal(world: str, directory: Path) -> Path:
    """Writes and builds the minimal `world` guest into `directory` (a plugin
    package directory); returns the component's path."""
    app, manifest, wasm = _GUESTS[world]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "app.py").write_text(textwrap.dedent(app).lstrip())
    (directory / "plugin.toml").write_text(textwrap.dedent(manifest).lstrip())
    out = directory / "build" / wasm
    out.parent.mkdir(exist_ok=True)
    command = [
        str(COMPONENTIZE_PY), "-d", str(ROOT / "wit"), "-w", f"yoi:plugin/{world}",
        "componentize", "app", "-p", str(directory), "-o", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"componentize-py failed for the minimal {world} guest:\n{done.stdout}\n{done.stderr}")
    return out
