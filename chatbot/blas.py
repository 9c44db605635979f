"""numpy's BLAS on one thread, for serving.

The served models (``chatbot.dialogue.lstm_runtime``, ``chatbot.nlu.runtime``) multiply small
matrices, one message at a time. OpenBLAS splits a product over every core from a few tens of
thousands of elements; when another process holds a core its threads spin and wait, and a 0.25 ms
parse took 4-9 ms at the 90th percentile on the 2-core development machine (one thread: 0.5 ms).
Concurrency comes from the event loop and from more server processes, not from threads inside
one product. Set ``CHATBOT_BLAS_THREADS`` to another number to choose otherwise (0: leave BLAS's
own default). Only BLAS libraries that numpy loaded are touched (threadpoolctl's ``blas`` API):
torch's own thread settings stay as training sets them.
"""

from __future__ import annotations

import logging
import os
import threading

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_done = False


def limit_blas_threads() -> None:
    """Apply ``CHATBOT_BLAS_THREADS`` (default 1) once per process."""
    global _done
    with _lock:
        if _done:
            return
        _done = True
        raw = os.environ.get("CHATBOT_BLAS_THREADS", "1").strip()
        try:
            threads = int(raw)
        except ValueError:
            logger.warning("CHATBOT_BLAS_THREADS=%r is not a number; using 1", raw)
            threads = 1
        if threads <= 0:
            return
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=threads, user_api="blas")
