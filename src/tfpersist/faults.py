"""Crash injection for the resume tests: a real SIGKILL at a named point of training.

Set ``TFPERSIST_KILL_AT=POINT:STEP`` (e.g. ``step:37``, ``before-meta:40``, ``saved:40``)
and the training process kills itself with SIGKILL when it reaches that point at that
global step, exactly as an OOM killer or a pulled plug would. Unset, this does nothing.

Points (see training.py): ``step`` after an optimizer step; ``before-state`` after a periodic
checkpoint's .index/.data are written and before the state file; ``before-meta`` after the
state file and before the .meta; ``saved`` once the checkpoint is complete.
"""

from __future__ import annotations

import os
import signal

ENV = "TFPERSIST_KILL_AT"


def point(name: str, step: int) -> None:
    spec = os.environ.get(ENV)
    if spec and spec == f"{name}:{step}":
        os.kill(os.getpid(), signal.SIGKILL)
