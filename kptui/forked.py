"""Run a pure function in a forked child while this process goes on with other work: the second core.

The child shares the parent's memory copy-on-write (nothing is copied to start it), computes ``fn(*args)``,
hands the result back pickled through a pipe and ends without the interpreter's teardown. No files, no
terminal: the child reads only what it was given. Where ``fork`` is missing or fails, or the child fails,
the function runs here instead (the answer is the same, only later).
"""

from __future__ import annotations

import os
import pickle
import signal
import warnings
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["Forked", "can_fork", "spawn"]

T = TypeVar("T")


def can_fork(cores: int = 2) -> bool:
    """This system forks and has ``cores`` cores (the child's among them), and ``KPTUI_NO_FORK`` is not set."""
    return hasattr(os, "fork") and (os.cpu_count() or 1) >= cores and not os.environ.get("KPTUI_NO_FORK")


class Forked(Generic[T]):
    """``fn(*args)`` computed in a child; :meth:`result` waits for it (once)."""

    def __init__(self, fn: Callable[..., T], *args: object) -> None:
        self._fn, self._args = fn, args
        self._pid: int | None = None
        self._fd = -1
        if not can_fork():
            return
        try:
            r, w = os.pipe()
        except OSError:
            return
        try:
            with warnings.catch_warnings():  # 3.12+ warns about forking a process with threads: the child
                warnings.simplefilter("ignore", DeprecationWarning)  # runs pure code only and never returns
                pid = os.fork()
        except OSError:
            os.close(r)
            os.close(w)
            return
        if pid == 0:  # the child
            code = 0
            try:
                os.close(r)
                payload = pickle.dumps(fn(*args), protocol=pickle.HIGHEST_PROTOCOL)
                view = memoryview(payload)
                while view:
                    view = view[os.write(w, view):]
            except BaseException:  # noqa: BLE001 - any failure: the parent computes it itself
                code = 1
            finally:
                os._exit(code)
        os.close(w)
        self._pid, self._fd = pid, r

    def result(self) -> T:
        if self._pid is None:
            return self._fn(*self._args)
        chunks: list[bytes] = []
        try:
            while True:
                chunk = os.read(self._fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(self._fd)
            _, status = os.waitpid(self._pid, 0)
            self._pid = None
        if status != 0 or not chunks:
            return self._fn(*self._args)
        return pickle.loads(b"".join(chunks))  # type: ignore[no-any-return]

    def __del__(self) -> None:  # a parse that raised before asking: reap the child
        if self._pid is not None:
            try:
                os.close(self._fd)
                os.kill(self._pid, signal.SIGKILL)  # our own child, by its id: its answer is not wanted
                os.waitpid(self._pid, 0)
            except OSError:
                pass


def spawn(fn: Callable[..., T], *args: object) -> Callable[[], T]:
    """``fn(*args)`` started in a child; call what this returns for the result (the engine's ``Spawn``)."""
    return Forked(fn, *args).result
