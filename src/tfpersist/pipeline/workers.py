"""Training on several worker processes — on this machine, or one per machine from
``TF_CONFIG`` — with TensorFlow's own multi-worker runtime (``tf.distribute.Server`` per
worker, collective ops; training.py), and the same bytes as one process.

``train.workers: N`` starts N worker processes here on free 127.0.0.1 ports (picked again if
one is taken), after the chief's housekeeping of the training directory. A worker that fails
— killed, out of memory, or timed out waiting for a stopped peer (``train.collective_timeout``)
— stops the others within that bound: the stage fails with one line naming the worker, and
every process it started is gone. The rerun resumes from the chief's last complete
checkpoint, with any N.

With ``TF_CONFIG`` (``{"cluster": {"worker": [host:port, …]}, "task": {"type": "worker",
"index": i}}``, what Kubernetes operators, Slurm scripts and Ray write) this process is worker
i of that cluster; worker 0 is the chief, the only one that reads or writes the training
directory: the others receive its state over the collective runtime before step 0. Every
machine needs the repository at the same commit and the prepared data; no shared file system.

The launcher does the chief's housekeeping, then only starts, watches and stops.
"""

from __future__ import annotations

import json
import multiprocessing
import socket
import sys
import time
from collections.abc import Callable
from multiprocessing import connection
from pathlib import Path

from tfpersist.core.errors import TfpersistError
from tfpersist.pipeline.params import ModelParams, TrainParams

PORT_ATTEMPTS = 3
PORT_EXIT = 3  # a worker's exit status when its address was taken
GRACE = 5.0  # seconds the others get to stop on their own once one worker failed


def train_prepared(
    prepared_dir: str | Path,
    train_dir: str | Path,
    model: ModelParams,
    params: TrainParams,
    tf_config: str | None = None,
    log: Callable[[str], None] = lambda m: print(m, file=sys.stderr),
):
    """Train on the prepared splits: in this process (one worker), as one worker of the
    ``tf_config`` cluster, or on ``params.workers`` local worker processes. Returns the
    chief's training.Result."""
    if tf_config:
        from tfpersist.pipeline import training

        return training.train_prepared(
            prepared_dir, train_dir, model, params, log, cluster=cluster_of(tf_config)
        )
    if params.workers == 1:
        from tfpersist.pipeline import training

        return training.train_prepared(prepared_dir, train_dir, model, params, log)
    return _local(Path(prepared_dir), Path(train_dir), model, params, log)


def cluster_of(tf_config: str):
    """The training.Cluster a ``TF_CONFIG`` describes (a "chief" job counts as worker 0)."""
    from tfpersist.pipeline.cluster import Cluster

    try:
        config = json.loads(tf_config)
        jobs = config["cluster"]
        task = config["task"]
        addresses = [*jobs.get("chief", []), *jobs.get("worker", [])]
        index = int(task["index"]) + (len(jobs.get("chief", [])) if task["type"] == "worker" else 0)
        if task["type"] not in ("chief", "worker") or not 0 <= index < len(addresses):
            raise ValueError(f"task {task} is not in the cluster")
    except (ValueError, KeyError, TypeError) as e:
        raise TfpersistError(
            f"TF_CONFIG: not a worker cluster ({e}); expected "
            '{"cluster": {"worker": ["host:port", …]}, "task": {"type": "worker", "index": 0}}'
        ) from None
    return Cluster(len(addresses), index, tuple(addresses))


def free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _local(prepared: Path, train_dir: Path, model, params: TrainParams, log):
    from tfpersist.pipeline import training  # the chief's housekeeping, before any worker

    splits, _, digest = training.load_prepared(prepared)
    total = training.total_steps(len(splits["train"]), params)
    training.prepare_run(train_dir, training.fingerprint(model, params, digest), total, log)
    context = multiprocessing.get_context("spawn")
    for attempt in range(PORT_ATTEMPTS):
        addresses = tuple(f"127.0.0.1:{p}" for p in free_ports(params.workers))
        outcome = _supervise(context, prepared, train_dir, model, params, addresses)
        if outcome != "ports" or attempt == PORT_ATTEMPTS - 1:
            break
    if outcome == "ports":
        raise TfpersistError(f"train: no free ports for {params.workers} workers")
    return outcome


def _supervise(context, prepared, train_dir, model, params: TrainParams, addresses):
    from tfpersist.pipeline.cluster import Cluster

    # a pipe per worker (a killed worker leaves no semaphore behind, as a Queue's would)
    pipes = [context.Pipe(duplex=False) for _ in addresses]
    processes = [
        context.Process(
            target=_worker,
            args=(
                pipes[i][1],
                str(prepared),
                str(train_dir),
                model,
                params,
                Cluster(len(addresses), i, addresses),
            ),
            name=f"tfpersist-worker-{i}",
            daemon=True,
        )
        for i in range(len(addresses))
    ]
    for p in processes:
        p.start()
    for _, sender in pipes:
        sender.close()  # the worker holds its end: EOF once it is gone
    readers = {reader: i for i, (reader, _) in enumerate(pipes)}
    results, failure, failed_at = {}, None, None

    def receive(timeout: float) -> None:
        nonlocal failure
        if not readers:
            time.sleep(timeout)
            return
        for reader in connection.wait(list(readers), timeout):
            try:
                kind, task, payload = reader.recv()
            except (EOFError, OSError):
                readers.pop(reader)
                continue
            if kind == "done":
                results[task] = payload
            elif kind == "ports":
                failure = (
                    ("ports", task, payload) if not failure or failure[0] == "died" else failure
                )
            elif failure is None or failure[0] == "died":
                failure = ("error", task, payload)

    stopped = []  # the workers still running when the others had failed: hung or blocked
    try:
        while True:
            receive(0.2)
            for i, p in enumerate(processes):
                if p.exitcode == PORT_EXIT and failure is None:
                    failure = ("ports", i, "its address was taken")
                elif p.exitcode not in (None, 0) and failure is None:
                    failure = ("died", i, _death(p.exitcode))
            if failure and failed_at is None:
                failed_at = time.monotonic()
            if all(p.exitcode is not None for p in processes):
                break
            if failed_at and time.monotonic() - failed_at > GRACE:
                break
    finally:
        for i, p in enumerate(processes):
            if p.is_alive():
                p.kill()
                stopped.append(i)
        for p in processes:
            p.join(timeout=10)
    for _ in range(len(processes) * 2):  # what is still in the pipes
        if not readers or len(results) == len(processes):
            break
        receive(1.0)
    for reader in list(readers):
        reader.close()
    if failure is None and len(results) < len(processes):
        failure = ("died", min(set(range(len(processes))) - set(results)), "ended without a result")
    if failure is None:
        return results[0]
    kind, task, why = failure
    if kind == "ports":
        return "ports"
    # the root cause: a worker killed by a signal (not by us), else the first one that said
    # why — a peer's "lost the other workers", or its exit status, comes after the kill
    dead = [
        (i, _death(p.exitcode))
        for i, p in enumerate(processes)
        if p.exitcode and p.exitcode < 0 and i not in stopped
    ]
    if dead and task not in dict(dead):
        (task, why), kind = dead[0], "died"
    who = f"worker {task} " if kind == "died" else ""
    hung = (
        f"; worker {', '.join(map(str, stopped))} was still running and was stopped"
        if stopped
        else ""
    )
    raise TfpersistError(f"train: {who}{why}{hung}; every worker was stopped")


def _die_with_parent() -> None:
    """On Linux, the kernel kills this worker when the launcher dies (SIGKILL, SIGTERM from
    DVC or CI): no worker outlives the stage."""
    import contextlib
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):  # not Linux: the launcher's finally
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PDEATHSIG


def _death(exitcode: int) -> str:
    import signal

    if exitcode < 0:
        return f"was killed ({signal.Signals(-exitcode).name})"
    return f"exited with status {exitcode}"


def _worker(sender, prepared, train_dir, model, params, cluster) -> None:
    """One worker process: train, say how it ended, and leave without TensorFlow's teardown
    (a server whose peer hangs can block it)."""
    import os
    import threading

    from tqdm import tqdm

    from tfpersist.core.errors import unexpected

    _die_with_parent()
    tqdm.set_lock(threading.RLock())  # not a process-shared semaphore a kill would leak
    lock = threading.Lock()  # the watchdog's thread and this one share the pipe

    def send(message) -> None:
        with lock:
            sender.send(message)

    from tfpersist.pipeline import training

    code = 1
    try:
        result = training.train_prepared(
            prepared,
            train_dir,
            model,
            params,
            cluster=cluster,
            prepared=True,
            report=lambda line: send(("error", cluster.task, line)),
        )
        send(("done", cluster.task, result))
        code = 0
    except training.PortTaken as e:
        send(("ports", cluster.task, str(e)))
        code = PORT_EXIT
    except TfpersistError as e:
        send(("error", cluster.task, str(e)))
    except Exception as e:  # still one line, for the stage to print
        send(("error", cluster.task, f"worker {cluster.task}: {unexpected(e)}"))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
