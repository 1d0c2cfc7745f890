"""Crash injection for the resume tests: a real SIGKILL at a named point of training.

Set ``TFPERSIST_KILL_AT=POINT:STEP`` (e.g. ``step:37``, ``before-meta:40``, ``saved:40``)
and the training process kills itself with SIGKILL when it reaches that point at that
global step, exactly as an OOM killer or a pulled plug would. Unset, this does nothing.

Points, in the order a checkpoint is written (see training.py and checkpoints.save):
``step`` after an optimizer step; ``before-meta`` once .index/.data are written;
``before-state`` once the .meta is written too; ``saved`` once the state file lists it (old
checkpoints not yet pruned). The same points prefixed ``best-`` fire while the best-so-far
checkpoint is saved (just before the periodic one, when validation accuracy improved).
Atomic writes (atomic.py) offer ``rename-<file name>:0``: killed with the new content in
its temp file, before it replaces the artifact at its final path. With several workers,
``POINT:STEP@TASK`` fires in worker TASK only, and ``TFPERSIST_STOP_AT`` (same syntax)
stops the process with SIGSTOP instead — a worker that hangs.
"""

from __future__ import annotations

import os
import signal

ENV = "TFPERSIST_KILL_AT"
STOP_ENV = "TFPERSIST_STOP_AT"  # SIGSTOP instead: a hung worker
TASK = 0  # the worker this process is (pipeline/workers.py sets it)


def point(name: str, step: int) -> None:
    for variable, sig in ((ENV, signal.SIGKILL), (STOP_ENV, signal.SIGSTOP)):
        spec = os.environ.get(variable)
        if spec and spec in (f"{name}:{step}", f"{name}:{step}@{TASK}"):
            os.kill(os.getpid(), sig)
