"""What every throwaway thing of the test harness shares: a clean-up at exit
for whatever a test started (clusters, poolers, servers), waiting on a
condition with a deadline, and free loopback ports.

Python 3 standard library only.
"""

import atexit
import os
import socket
import threading
import time

_live = []  # objects with .cleanup(), cleaned at exit in reverse order
_live_lock = threading.Lock()


def register(obj):
    """Remembers obj so that an aborted run still calls obj.cleanup() at exit."""
    with _live_lock:
        _live.append(obj)


def unregister(obj):
    with _live_lock:
        if obj in _live:
            _live.remove(obj)


@atexit.register
def _cleanup_leftovers():
    with _live_lock:
        leftovers = list(reversed(_live))
    for obj in leftovers:
        try:
            obj.cleanup()
        except Exception:  # best effort at interpreter exit
            pass


def wait_until(predicate, timeout, interval=0.05, message=None):
    """Calls predicate() until it returns something truthy and returns that.

    Raises AssertionError when `timeout` seconds pass first. Exceptions from
    the predicate count as "not yet" (the last one is named in the error).
    """
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # not ready yet
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = message or getattr(predicate, "__name__", "condition")
            if last_exc is not None:
                detail += f" (last error: {last_exc!r})"
            raise AssertionError(f"timed out after {timeout}s waiting for {detail}")
        time.sleep(interval)


def free_port():
    """A currently unused TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def is_root():
    return os.geteuid() == 0


def read_pty(fd):
    """Everything a child writes to the pseudo-terminal `fd` until it closes it."""
    seen = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    return seen
