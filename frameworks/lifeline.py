"""A cell's tie to the harness that started it: when the harness dies, even by SIGKILL (which no handler of its
sees), the cell dies too, instead of running on as an orphan that holds the cores, memory and GPU the next run
measures with.

The harness passes its pid in BENCH_PARENT_PID. On Linux the kernel kills the cell when its parent exits
(prctl PR_SET_PDEATHSIG); elsewhere, or when the parent is not the harness itself (an interpreter given with
--python may be a wrapper script that does not exec), a daemon thread polls. Standard library only: it runs in
every framework's environment (numpy 1.23 and up) before any framework is imported.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

PARENT_PID_VARIABLE = "BENCH_PARENT_PID"
POLL_S = 1.0
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def tie_to_parent() -> None:
    """End this process when the harness that spawned it ends; nothing to do when started by hand."""
    if not os.environ.get(PARENT_PID_VARIABLE):
        return
    parent, spawner = os.getppid(), int(os.environ[PARENT_PID_VARIABLE])
    tied = parent == spawner and _kill_on_parent_exit()
    if os.getppid() != parent or not _alive(spawner):  # gone before the tie was made
        _die()
    if not tied:
        threading.Thread(target=_watch, args=(parent, spawner), name="bench-lifeline", daemon=True).start()


def _kill_on_parent_exit() -> bool:
    """Ask Linux for SIGKILL when the parent exits; False where prctl is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return False
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0


def _watch(parent: int, spawner: int) -> None:
    """Poll until this process is re-parented (its parent died) or the spawner is gone, then end it."""
    while os.getppid() == parent and _alive(spawner):
        time.sleep(POLL_S)
    _die()


def _alive(pid: int) -> bool:
    """PID exists and is ours to signal (the spawner runs as this user: another owner means the pid was reused)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _die() -> None:
    """The same end as PR_SET_PDEATHSIG's: nothing in the cell can delay it."""
    os.kill(os.getpid(), signal.SIGKILL)
