"""Running a test's work on several threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable


def on_threads(work: Callable[[int], None], count: int) -> None:
    """work(i) for i in range(count), each on its own thread, all started together at a barrier;
    the first error a thread met is raised again here."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            start.wait(10)
            work(i)
        except BaseException as exc:  # noqa: B036 - raised again on the calling thread below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
