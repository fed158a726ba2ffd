"""`pdk run` in the background, as the CLI tests drive it (test_cli_send_run_status,
test_cli_logs_live, test_durable_state): a real subprocess with its own control-socket
directory (`YOI_PDK_RUNTIME_DIR`), its stdout read line by line on a thread, waited on
line by line (no sleeps) until the line a test needs, e.g. the banner
`press Ctrl-C to stop`, printed once the control socket listens.

The fixtures `runtime_dir` and `run_pdk` (tests/e2e/conftest.py) give a test a fresh
directory and a starter whose processes are killed when the test ends."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable

# A deadline for a line that never comes (a failure), not a timing expectation: a
# loaded machine may take this long to start a host and compile a component.
WAIT_S = 90.0
READY = "press Ctrl-C to stop"  # `pdk run`'s banner: the control socket is listening


def env_for(runtime_dir: Path | None = None) -> dict[str, str]:
    """The test's environment for a `pdk` subprocess; its own socket directory if given."""
    env = {**os.environ, "PDK_DEBUG": ""}
    if runtime_dir is not None:
        env["YOI_PDK_RUNTIME_DIR"] = str(runtime_dir)
    return env


class PdkRun:
    """A `pdk run ARGS...` subprocess whose stdout is read by a thread, line by line."""

    def __init__(self, *args: str | Path, runtime_dir: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pdk.cli", "run", *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env_for(runtime_dir),
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def until(self, match: str | Callable[[str], bool], what: str | None = None) -> str:
        """The next line that `match` accepts (a str: the line starts with it); every
        line read is kept in `seen`. Fails if the process ends first or after WAIT_S."""
        accept: Callable[[str], bool] = (lambda line: line.startswith(match)) if isinstance(match, str) else match
        what = what or repr(match)
        deadline = time.monotonic() + WAIT_S
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line for {what} within {WAIT_S:g} s: {self.seen}") from None
            assert line is not None, f"pdk run ended before {what}: {self.seen} {self.proc.stderr.read() if self.proc.stderr else ''}"
            self.seen.append(line)
            if accept(line):
                return line

    def ready(self) -> None:
        """Wait for the banner: the host is running and its control socket listens."""
        self.until(lambda line: line == READY, "the banner")

    def port(self) -> int:
        """The port of the `http: listening on http://127.0.0.1:PORT` line."""
        return int(self.until("http: listening on ").rsplit(":", 1)[1].strip("/"))

    def rest(self) -> list[str]:
        """Every line still to come, up to the end of the output."""
        out = []
        while (line := self.lines.get(timeout=WAIT_S)) is not None:
            out.append(line)
        return out

    def stop(self, sig: int = signal.SIGINT) -> int:
        """Send `sig` and wait for the exit; the exit code."""
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=WAIT_S)

    def stopped(self) -> list[str]:
        """SIGINT, a clean exit (0), and the lines printed after those already read."""
        assert self.stop(signal.SIGINT) == 0
        return self.rest()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
