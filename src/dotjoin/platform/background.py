"""Pipeline stages on threads: one stage runs ahead of the next (reading while typing while loading),
with a bounded queue between them so memory stays a few items deep; a stage may also run on several
threads at once, its results kept in input order.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def background(items: Iterator[T], *, name: str, depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` in a worker thread, ``depth`` items ahead; its exceptions re-raise here.

    >>> list(background(iter(range(5)), name="doctest"))
    [0, 1, 2, 3, 4]

    Leaving early (an error downstream, a closed generator) stops the worker, closes ``items`` in its
    thread and waits for it, so nothing reads on after the caller has moved on.
    """
    box: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(entry, timeout=0.1)
            except queue.Full:
                continue
            return True
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("done", None))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            put(("error", exc))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=work, name=f"dotjoin-{name}", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = box.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        worker.join()


R = TypeVar("R")


def ordered_map(
    fn: Callable[[T], R], items: Iterator[T], *, name: str, workers: int = 2
) -> Iterator[tuple[T, R]]:
    """``(item, fn(item))`` in input order, ``fn`` running on ``workers`` threads, ``workers`` items ahead.

    For a stage whose work releases the GIL (Arrow compute, numpy): two chunks typed at once on two
    cores. ``items`` is pulled in the caller's thread; ``fn``'s exceptions re-raise here, in order.

    >>> [r for _, r in ordered_map(lambda x: x * x, iter(range(5)), name="doctest")]
    [0, 1, 4, 9, 16]
    """
    pending: deque[tuple[T, Future[R]]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix=f"dotjoin-{name}") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= workers:
                    done, future = pending.popleft()
                    yield done, future.result()
            while pending:
                done, future = pending.popleft()
                yield done, future.result()
        finally:
            for _, future in pending:  # leaving early: drop the work not started
                future.cancel()
