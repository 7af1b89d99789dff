"""Group commit: messages arriving together on many SMTP sessions share one disk flush."""

from __future__ import annotations

import asyncio
import queue
import threading

import structlog

from ingest.accept import Accepted, Door, Incoming

log = structlog.get_logger()

# Hand-written because no library batches blocking SQLAlchemy commits for asyncio callers.
MAX_BATCH = 64

_Pending = tuple[Incoming, asyncio.Future[Accepted], asyncio.AbstractEventLoop]


class GroupCommitter:
    """A writer thread takes whatever is waiting (up to MAX_BATCH) and stores it through the
    door in one transaction. A failed batch is retried message by message, so one bad
    message gets its 451 alone."""

    def __init__(self, door: Door) -> None:
        self._door = door
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._thread.start()

    async def submit(self, incoming: Incoming) -> Accepted:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Accepted] = loop.create_future()
        self._queue.put((incoming, future, loop))
        return await future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(item)
            self._store(batch)

    def _store(self, batch: list[_Pending]) -> None:
        try:
            results = self._door.accept_many([incoming for incoming, _, _ in batch])
        except Exception:
            if len(batch) == 1:
                _, future, loop = batch[0]
                loop.call_soon_threadsafe(_fail, future, RuntimeError("store failed"))
                log.exception("storing a message failed")
                return
            for pending in batch:
                self._store([pending])
            return
        # one wake-up of the event loop for the whole batch, not one per message
        loop = batch[0][2]
        loop.call_soon_threadsafe(
            _resolve_all,
            [(future, result) for (_, future, _), result in zip(batch, results, strict=True)],
        )


def _resolve_all(outcomes: list[tuple[asyncio.Future[Accepted], Accepted]]) -> None:
    for future, result in outcomes:
        if not future.done():
            future.set_result(result)


def _fail(future: asyncio.Future[Accepted], error: Exception) -> None:
    if not future.done():
        future.set_exception(error)
