"""Every size, count and time bound of the runtime model, in one place.

Shared by the guest PDK (which enforces output bounds before anything leaves the
component) and the reference host (which enforces them again, before anything
crosses the boundary). Standard library only: this module is bundled into every
component.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

# Tool results (the v1 ToolOutput shape).
TOOL_SUMMARY_MAX_BYTES = 1 * KIB
TOOL_CONTENT_MAX_BYTES = 64 * KIB
ERROR_MESSAGE_MAX_BYTES = 4 * KIB
ERROR_DETAILS_MAX_BYTES = 16 * KIB
TRACEBACK_MAX_FRAMES = 8

# Inputs checked by the host before a call crosses the boundary.
TOOL_INPUT_MAX_BYTES = 64 * KIB
CONFIG_MAX_BYTES = 64 * KIB
EVENT_PAYLOAD_MAX_BYTES = 256 * KIB

# JSON a guest returns (tool content, data, details): arrays/objects nested deeper are a
# typed `invalid_output` (checked by a linear scan before parsing).
GUEST_JSON_DEPTH_MAX = 64

# Output commands.
COMMANDS_PER_OUTPUT_MAX = 16
COMMAND_PAYLOAD_MAX_BYTES = 64 * KIB
COMMAND_DETAIL_MAX_BYTES = 1 * KIB
SERVICE_OUTPUT_MAX_BYTES = 1 * MIB

# Host API `request` (outbound HTTP). v1 allowed 32 KiB bodies, 64 KiB responses, 5 s.
HTTP_REQUEST_BODY_MAX_BYTES = 64 * KIB
HTTP_RESPONSE_MAX_BYTES = 256 * KIB  # a longer body is cut and flagged `truncated`, not failed
HTTP_HEADERS_MAX = 64  # request headers refused above this; response headers kept up to it
HTTP_HEADER_VALUE_MAX_BYTES = 8 * KIB
HTTP_TIMEOUT_MAX_S = 10.0
# What the host reads of a guest's result (pdk/host/codec.py, pdk/host/_fastcall.py):
# past these a result is refused whole (a typed codec error: `invalid_output`) before the
# rest of it is converted, so a hostile result costs the host bounded work. Both are four
# times the most a valid output carries (16 commands with 64 headers or 64 KiB of bytes
# each), so an output a little over a bound still gets the answer of the check that owns
# that bound (one `excess` command result, a `too_large` command).
RESULT_LIST_ITEMS_MAX = 4 * COMMANDS_PER_OUTPUT_MAX * (1 + HTTP_HEADERS_MAX)  # elements of every list but list<u8>, in all
RESULT_BYTES_MAX = 4 * COMMANDS_PER_OUTPUT_MAX * COMMAND_PAYLOAD_MAX_BYTES  # list<u8> bytes, in all
# Host name lookups (getaddrinfo has no timeout) run on one small shared pool of threads;
# at most this many lookups wait for a thread. Past that, a request fails at once.
HTTP_RESOLVER_THREADS = 4
HTTP_RESOLVER_PENDING_MAX = 16
# What a blocking host import leaves of the guest's call deadline, so the guest can still
# handle the answer (a typed error) and return before the epoch deadline traps it.
HOST_IMPORT_DEADLINE_MARGIN_S = 0.25
HOST_API_MESSAGE_MAX_BYTES = 1 * KIB  # request-error / fs-error messages

# Host API `fs` (files under granted roots). v1: 64 KiB read/write, 256 entries.
FS_READ_MAX_BYTES = 1 * MIB
FS_WRITE_MAX_BYTES = 1 * MIB
FS_LIST_MAX_ENTRIES = 1024
FS_PATH_MAX_BYTES = 1024
FS_SEGMENT_MAX_BYTES = 255

# Guest-supplied text shown by the host (errors, logs, details): cut to the budget plus
# this much before redaction, so redaction costs O(budget) and still sees a secret that
# straddles the final cut whole.
REDACT_LOOKAHEAD_BYTES = 4 * KIB
# Validation errors (tool inputs, event payloads): every error is listed, up to this many.
VALIDATION_ERRORS_MAX = 10
VALIDATION_MESSAGE_MAX_CHARS = 512

# Logging.
LOG_MESSAGE_MAX_BYTES = 4 * KIB
LOG_RING_MAX_RECORDS = 256
GUEST_STDIO_MAX_BYTES = 64 * KIB

# Instance limits (host defaults; all configurable).
MEMORY_DEFAULT_BYTES = 64 * MIB
MEMORY_MIN_BYTES = 20 * MIB  # a Python guest needs ~18 MiB to start
CALL_DEADLINE_DEFAULT_S = 2.0
EPOCH_TICK_S = 0.01
# Wasmtime's `memory_size` caps each linear memory; these cap how many the plugin may
# create (per store), so the memory cap holds for the plugin as a whole. A componentize-py
# guest needs 1 memory, 2 tables (the larger has ~5,700 elements) and 14 core instances.
INSTANCE_MEMORIES_MAX = 1
INSTANCE_TABLES_MAX = 8
INSTANCE_TABLE_ELEMENTS_MAX = 200_000  # per table; a funcref element costs ~8 bytes
INSTANCE_CORE_INSTANCES_MAX = 64
# A guest blocked in a WASI call (a sleep, a poll) is not interrupted by the epoch
# deadline; the host stops waiting for it this long after its deadline, abandons the
# instance and answers `timeout`. At most this many abandoned calls per plugin may still
# be blocked at once; past that, the plugin cannot be instantiated until they end.
BLOCKED_CALL_GRACE_S = 0.3
ABANDONED_CALLS_MAX = 4

# Manifest.
PLUGIN_ID_MAX_LEN = 63  # the whole id rule is `pdk._contract.PLUGIN_ID_PATTERN`
NAME_MAX_LEN = 64
DESCRIPTION_MAX_BYTES = 4 * KIB
MANIFEST_MAX_BYTES = 1 * MIB  # plugin.toml itself, refused before it is parsed
MANIFEST_NESTING_MAX = 64  # tables and arrays inside one another, input schemas included
MANIFEST_STRING_MAX_BYTES = 4 * KIB  # any string value (tighter bounds above where named)
MANIFEST_KEY_MAX_BYTES = 256

# Packages (.yoi-plugin archives).
PACKAGE_MAX_ENTRIES = 512
PACKAGE_MAX_FILE_BYTES = 64 * MIB  # a Python component is ~18 MiB
PACKAGE_MAX_TOTAL_BYTES = 128 * MIB
PACKAGE_MAX_PATH_LEN = 255

# Service/Ingress runtime (host maximums; a manifest may ask for less).
QUEUE_CAPACITY_DEFAULT = 64
QUEUE_CAPACITY_MAX = 1024
MAX_ATTEMPTS_DEFAULT = 3
MAX_ATTEMPTS_MAX = 10
RETRY_BACKOFF_DEFAULT_MS = 200
RETRY_BACKOFF_MAX_MS = 60_000
DEAD_LETTER_MAX = 256
COMMAND_RESULTS_RING = 64
EMIT_LOG_MAX = 1024
RESTART_BUDGET = 5
RESTART_WINDOW_S = 60.0
RESTART_BACKOFF_INITIAL_S = 0.1
RESTART_BACKOFF_MAX_S = 5.0
STOP_DRAIN_DEADLINE_S = 5.0
TIMER_MIN_INTERVAL_MS = 100
TIMER_MAX_INTERVAL_MS = 86_400_000  # one day
HTTP_INGRESS_BODY_MAX_BYTES = 256 * KIB
HTTP_INGRESS_HEADERS_MAX_BYTES = 16 * KIB

HTTP_INGRESS_HEADER_FIELDS_MAX = 100
# The inbound webhook listener's time bounds and connection cap. A request head must
# arrive whole within HEAD_TIMEOUT from its first byte, a body within BODY_TIMEOUT from
# the end of its head (256 KiB at ~8.5 KiB/s), a kept-alive connection may sit idle for
# IDLE_TIMEOUT, an answer must be taken by the client within WRITE_TIMEOUT. At the cap a
# new connection sheds the oldest idle or still-reading one (slowloris cannot starve it).
HTTP_INGRESS_HEAD_TIMEOUT_S = 10.0
HTTP_INGRESS_BODY_TIMEOUT_S = 30.0
HTTP_INGRESS_IDLE_TIMEOUT_S = 10.0
HTTP_INGRESS_WRITE_TIMEOUT_S = 10.0
HTTP_INGRESS_CONNECTIONS_MAX = 128

# Durable runtime state (pdk/host/runtime/store.py; policy in docs/runtime.md).
# Handled events are kept (ids, attempts, times; no payload) up to this many, then
# pruned oldest first; dead letters and emitted events are kept as many as in memory.
STATE_HANDLED_KEPT_MAX = 10_000
STATE_DEAD_LETTERS_MAX = DEAD_LETTER_MAX
STATE_EMITTED_MAX = EMIT_LOG_MAX
# The file may not grow past this (SQLite `max_page_count`); the caps above and the
# queue's keep it far below: a write past it fails as `full`, it never drops data.
STATE_STORE_MAX_BYTES = 1024 * MIB
STATE_WRITE_BATCH_MAX = 512  # operations per transaction (group commit)
STATE_FLUSH_DELAY_S = 0.02  # completions wait at most this long to share a commit
STATE_WRITE_TIMEOUT_S = 10.0  # an accept waits this long for its commit, then fails
STATE_LOCK_TIMEOUT_S = 0.5  # a store held by another process is reported after this

# Host-owned WebSocket connections (v1: 64 KiB messages, 4 connections, no heartbeat).
# An inbound message may be as large as an event payload; a bigger one closes the
# connection with 1009 (message too big) instead of being cut.
WEBSOCKET_MESSAGE_MAX_BYTES = EVENT_PAYLOAD_MAX_BYTES
WEBSOCKET_SEND_MAX_BYTES = COMMAND_PAYLOAD_MAX_BYTES
WEBSOCKET_CONNECTIONS_MAX = 16  # per plugin, over all its ingresses
WEBSOCKET_SUBPROTOCOLS_MAX = 8
WEBSOCKET_SEND_QUEUE_MAX = 64  # per connection
WEBSOCKET_SEND_TIMEOUT_S = 2.0  # a send holds the dispatcher at most this long
WEBSOCKET_OPEN_TIMEOUT_S = 10.0
WEBSOCKET_CLOSE_TIMEOUT_S = 2.0
WEBSOCKET_PING_INTERVAL_S = 20.0
WEBSOCKET_PING_TIMEOUT_S = 20.0
WEBSOCKET_RECONNECT_INITIAL_S = 0.5
WEBSOCKET_RECONNECT_MAX_S = 30.0
WEBSOCKET_STABLE_AFTER_S = 10.0  # an open that lasted this long resets the backoff
# Frames the WebSocket library may buffer before it stops reading the socket; kept
# small so that a paused reader turns into TCP backpressure quickly.
WEBSOCKET_READ_BUFFER_FRAMES = 4
