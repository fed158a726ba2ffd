"""`Finisher`: ends handled events on a thread of its own (pipelined dispatch).

The dispatcher calls the guest; once an output is judged sound (no fault, a record,
its `data_json` parsed, its commands a list), the rest of the event's end - running
its commands, counting, the outcome, the store's `handled` - is handed here and runs
while the dispatcher calls the guest with the next event. The guest call releases
the GIL (pdk/host/_fastcall.py), so on two cores that Python overlaps the next
event's wasm instead of following it.

Guarantees kept (dispatcher.py): one finisher thread per runtime takes the handed
events in the order they were handed, so commands run in the order the events were
handled and executors are still called from one thread at a time. Everything else
the dispatcher does - a fault, a refused output, a status read, a restart, a stop -
waits first until every handed event has ended (`barrier`), so those see the same
state as without the pipeline. A handed event keeps its queue slot until it ends
(queue.py `hand_off`), so the queue bound and `wait_idle` count it.

The thread ends after `IDLE_EXIT_S` without work and is started again by the next
hand-off, so an idle runtime holds no extra thread.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

IDLE_EXIT_S = 1.0


class Finisher:
    def __init__(self, name: str) -> None:
        self._name = name
        self._items: deque[tuple[Callable[[Any], None], Any]] = deque()
        self._cv = threading.Condition()
        self._pending = 0  # handed and not yet ended
        self._thread: threading.Thread | None = None

    def hand(self, work: Callable[[Any], None], item: Any) -> None:
        """Run `work(item)` on the finisher thread after everything handed before."""
        with self._cv:
            self._items.append((work, item))
            self._pending += 1
            if self._thread is None:
                self._start_locked()
            else:
                self._cv.notify()  # (the only other waiter, `barrier`, is the one thread that hands)

    def barrier(self) -> None:
        """Wait until everything handed has ended. Only the dispatcher hands, so when
        it reads nothing pending here, nothing can be."""
        if not self._pending:
            return
        with self._cv:
            while self._pending:
                self._cv.wait()

    def pending(self) -> int:
        return self._pending

    def owns_current_thread(self) -> bool:
        return self._thread is not None and threading.current_thread() is self._thread

    def _start_locked(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        cv = self._cv
        idle = False
        try:
            while True:
                with cv:
                    while not self._items:
                        if not cv.wait(IDLE_EXIT_S) and not self._items:
                            self._thread = None  # (under the lock: the next `hand` starts a new one)
                            idle = True
                            return
                    work, item = self._items.popleft()
                try:
                    work(item)
                finally:
                    with cv:
                        self._pending -= 1
                        if not self._pending:
                            cv.notify_all()
        finally:
            if not idle:  # ended by an exception that escaped `work`: carry on with the rest
                with cv:
                    if self._thread is me:
                        self._thread = None
                        if self._items:
                            self._start_locked()
