"""Tunables of the WebSocket driver. Defaults come from `pdk.limits`; tests and
benchmarks shorten the times."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from pdk.limits import (
    WEBSOCKET_CLOSE_TIMEOUT_S,
    WEBSOCKET_MESSAGE_MAX_BYTES,
    WEBSOCKET_OPEN_TIMEOUT_S,
    WEBSOCKET_PING_INTERVAL_S,
    WEBSOCKET_PING_TIMEOUT_S,
    WEBSOCKET_READ_BUFFER_FRAMES,
    WEBSOCKET_RECONNECT_INITIAL_S,
    WEBSOCKET_RECONNECT_MAX_S,
    WEBSOCKET_SEND_MAX_BYTES,
    WEBSOCKET_SEND_QUEUE_MAX,
    WEBSOCKET_SEND_TIMEOUT_S,
    WEBSOCKET_STABLE_AFTER_S,
)

# Close codes after which the peer has told us not to come back as we are (RFC 6455:
# 1008 policy violation). Every other close is followed by a reconnect with backoff.
NO_RECONNECT_CODES: frozenset[int] = frozenset({1008})


@dataclass(frozen=True)
class DriverOptions:
    open_timeout_s: float = WEBSOCKET_OPEN_TIMEOUT_S
    close_timeout_s: float = WEBSOCKET_CLOSE_TIMEOUT_S
    # Heartbeat: a ping every interval; no pong within the timeout = a dead peer.
    # None disables the heartbeat.
    ping_interval_s: float | None = WEBSOCKET_PING_INTERVAL_S
    ping_timeout_s: float = WEBSOCKET_PING_TIMEOUT_S
    reconnect: bool = True
    reconnect_initial_s: float = WEBSOCKET_RECONNECT_INITIAL_S
    reconnect_max_s: float = WEBSOCKET_RECONNECT_MAX_S
    stable_after_s: float = WEBSOCKET_STABLE_AFTER_S
    no_reconnect_codes: frozenset[int] = NO_RECONNECT_CODES
    max_message_bytes: int = WEBSOCKET_MESSAGE_MAX_BYTES
    max_send_bytes: int = WEBSOCKET_SEND_MAX_BYTES
    send_queue_max: int = WEBSOCKET_SEND_QUEUE_MAX
    send_timeout_s: float = WEBSOCKET_SEND_TIMEOUT_S
    read_buffer_frames: int = WEBSOCKET_READ_BUFFER_FRAMES
    # While the plugin's queue is full, a held frame is offered again as soon as one of
    # the plugin's events ends (`rt.on_outcome`), and at the latest after a pause that
    # doubles from `retry_initial_s` up to `retry_max_s`.
    retry_initial_s: float = 0.005
    retry_max_s: float = 0.1
    user_agent: str = "yoi-pdk"


@dataclass
class Backoff:
    """Exponential backoff with jitter: attempt n waits a random time in
    [d/2, d] where d = min(max, initial * 2**(n-1)). Half-jitter keeps a floor (so a
    restarted server is not hit by every client at once) and spreads the rest."""

    initial_s: float
    max_s: float
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next_delay(self) -> float:
        self.attempt += 1
        ceiling: float = min(self.max_s, self.initial_s * float(2 ** min(self.attempt - 1, 30)))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)

    def reset(self) -> None:
        self.attempt = 0
