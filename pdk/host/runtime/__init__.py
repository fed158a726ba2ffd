"""The Service/Ingress runtime of the reference host: lifecycle, the bounded event
queue with retries and dead letters, output commands, and the status document.

    from pdk.host import Case, Host
    from pdk.host.runtime import ServiceRuntime, RuntimeOptions

    with Host() as host:
        plugin = host.load("examples/counter-service", dev_grants=True)
        rt = ServiceRuntime(plugin, {"greeting": "yo"})
        rt.start()
        rt.submit("inbox", "message", Case("text", "hi"))     # Accepted | Refused
        rt.wait_idle(5.0)
        rt.emitted(), rt.outcomes(), rt.status()
        rt.stop()

Module map: `runtime` (ServiceRuntime, the public API) over its layers `dispatcher`
(the one thread that calls the plugin), `supervisor` (start, restarts, stop),
`outcomes` (handled, retried or dead-lettered) and `core` (shared state, status
snapshot); `records` (error records from guest values), `queue` (the bounded
queue), `intake` (submit checks), `commands` (command checks and executors),
`lifecycle` (states, restart budget), `dead_letters`, `counters` (counters and the
invariant), `emit_log` (emitted events), `status` (the status document),
`guest` (calls into the component), `options`, `model` (Accepted, Refused, events),
`store` (the state store: `:memory:` or a SQLite file, `store_sqlite`, `store_model`).
"""

from .commands import COMMAND_KINDS, COMMAND_RESULTS, CommandContext, CommandResult, Execution, Executor
from .dead_letters import DEAD_LETTER_REASONS
from .guest import EVENTS_IFACE, LIFECYCLE_IFACE
from .lifecycle import STATES
from .model import REFUSAL_REASONS, Accepted, Refused
from .options import IngressSettings, RuntimeOptions
from .runtime import ServiceRuntime
from .status import STATUS_SCHEMA
from .store import STORE_ERROR_CODES, StoreError

__all__ = [
    "COMMAND_KINDS",
    "COMMAND_RESULTS",
    "DEAD_LETTER_REASONS",
    "EVENTS_IFACE",
    "LIFECYCLE_IFACE",
    "REFUSAL_REASONS",
    "STATES",
    "STATUS_SCHEMA",
    "STORE_ERROR_CODES",
    "Accepted",
    "CommandContext",
    "CommandResult",
    "Execution",
    "Executor",
    "IngressSettings",
    "Refused",
    "RuntimeOptions",
    "ServiceRuntime",
    "StoreError",
]
