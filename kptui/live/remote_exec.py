"""The process door of remote reads: :meth:`Spawner.run` starts one :class:`~kptui.live.remote_argv.Call`
(``kubectl`` or ``ssh``, on this machine) and reads its output as it streams.

- Only a :class:`Call` runs, and only if its first word is ``kubectl`` or ``ssh``: the builders of
  :mod:`kptui.live.remote_argv` make them, from checked values and the fixed read-only commands.
- No shell (``shell=False``), standard input closed, the user's environment (kubeconfig, credentials plugins,
  ssh agent: kubectl and ssh need them; nothing kptui reads from a node goes into it), the executable from the
  user's ``PATH``.
- Each call runs in a session of its own, so a ctrl-c at the terminal reaches kptui only: kptui decides what
  to stop. :meth:`Spawner.cancel` (from any thread) kills the running call's process group, except a call run
  with ``protect`` (creating the debug pod: kptui must learn its name to delete it, so that one is let finish).
- Standard output is read as it arrives, at most :data:`MAX_OUTPUT` bytes (past it the call is killed and
  fails); the last :data:`STDERR_TAIL` bytes of standard error are kept; every call has a timeout.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO

from .remote_argv import Call

__all__ = ["MAX_OUTPUT", "STDERR_TAIL", "Outcome", "Spawner"]

MAX_OUTPUT = 1 << 30  # as the reading ceiling of a file
STDERR_TAIL = 64 * 1024
PROGRAMS = ("kubectl", "ssh")
_CHUNK = 1 << 16


@dataclass(frozen=True)
class Outcome:
    """What one call did: exit status (None: it did not run or did not finish), output, wall time, error."""

    status: int | None
    stdout: bytes
    stderr: str
    seconds: float
    error: str | None = None  # "timed out after 60 s", "interrupted", "kubectl is not installed", …

    @property
    def ok(self) -> bool:
        return self.status == 0 and self.error is None


def _drain(stream: IO[bytes], keep: bytearray, limit: int, tail: bool, over: threading.Event) -> None:
    while True:
        chunk = stream.read1(_CHUNK) if hasattr(stream, "read1") else stream.read(_CHUNK)
        if not chunk:
            return
        keep += chunk
        if len(keep) > limit:
            if tail:
                del keep[: len(keep) - limit]
            else:
                over.set()
                return


class Spawner:
    """Runs the calls of one node, one at a time; :meth:`cancel` stops them from another thread."""

    def __init__(self, *, max_output: int = MAX_OUTPUT) -> None:
        self.max_output = max_output
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._protected = False
        self._cancel = threading.Event()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def cancel(self) -> None:
        """Stop: kill the running call (unless protected) and refuse new ones but :meth:`run` ``always``."""
        self._cancel.set()
        with self._lock:
            if self._proc is not None and not self._protected:
                _kill(self._proc)

    def run(self, call: Call, timeout: float, *, protect: bool = False, always: bool = False) -> Outcome:
        """Run ``call`` to its end, its timeout, or a cancel. ``always``: even after a cancel (the delete of a
        debug pod); ``protect``: a cancel does not stop this call."""
        if not isinstance(call, Call) or not call.argv or call.argv[0] not in PROGRAMS:
            raise TypeError(f"not a call kptui makes: {call!r}")
        if self.cancelled and not always:
            return Outcome(None, b"", "", 0.0, "interrupted")
        exe = shutil.which(call.argv[0])
        if exe is None:
            return Outcome(None, b"", "", 0.0, f"{call.argv[0]} is not installed (not found on PATH)")
        start = time.monotonic()
        out, err, over = bytearray(), bytearray(), threading.Event()
        try:
            with self._lock:
                proc = subprocess.Popen([exe, *call.argv[1:]], shell=False, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                        close_fds=True, env=dict(os.environ))  # fmt: skip
                self._proc, self._protected = proc, protect or always
        except OSError as exc:
            return Outcome(None, b"", "", time.monotonic() - start, f"could not run {call.argv[0]}: "
                           f"{exc.strerror or exc}")  # fmt: skip
        assert proc.stdout is not None and proc.stderr is not None
        readers = [threading.Thread(target=_drain, args=(proc.stdout, out, self.max_output, False, over), daemon=True),
                   threading.Thread(target=_drain, args=(proc.stderr, err, STDERR_TAIL, True, over), daemon=True)]
        for t in readers:
            t.start()
        error = None
        try:
            while True:
                try:
                    proc.wait(timeout=0.05)
                    if self.cancelled and not (protect or always) and proc.returncode < 0:
                        error = "interrupted"  # cancel() killed it
                    break
                except subprocess.TimeoutExpired:
                    pass
                if over.is_set():
                    error = f"its output passed {self.max_output >> 20} MiB: stopped"
                elif time.monotonic() - start > timeout:
                    error = f"timed out after {timeout:g} s"
                elif self.cancelled and not (protect or always):
                    error = "interrupted"
                if error:
                    _kill(proc)
                    proc.wait()
                    break
        finally:
            with self._lock:
                self._proc = None
            for t in readers:
                t.join(5.0)
            for stream in (proc.stdout, proc.stderr):
                stream.close()
        seconds = time.monotonic() - start
        stderr = bytes(err).decode("utf-8", "replace")
        if error is not None:  # what it printed so far still counts (kubectl debug names its pod first)
            return Outcome(None, bytes(out), stderr, seconds, error)
        return Outcome(proc.returncode, bytes(out), stderr, seconds)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """Kill the call's process group (its session: kptui started it, nothing else is in it)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
