"""Hosts that share nothing but a network, on one Linux machine: one network namespace per
host, each with its own address on a switch (a bridge in a namespace of its own), each
worker run from its own copy of the repository. No shared file system between the copies
is used: the chief's ``models/train`` is the only training directory.

tests/pipeline/test_hosts.py runs the scenario with tiny params (``make test``);
``python tests/hosts.py`` (``make hosts``) runs it with the repository's params and checks
the chief's ``models/train`` against the committed ``dvc.lock``, printing what each host
said — docs/scale.md's "Training on several machines" shows that output.

Needs root (CAP_NET_ADMIN) and iproute2's ``ip``; ``unavailable()`` says why not in one line.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PORT = 2222  # every host has its own address: the same port on each
SUBNET = "10.231.0"


def unavailable() -> str | None:
    """Why namespaces cannot be made here, or None."""
    if shutil.which("ip") is None:
        return "no `ip` (iproute2) to make network namespaces"
    name = f"tfp{os.getpid()}probe"[:15]
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        return f"cannot make a network namespace ({made.stderr.strip() or 'not root'})"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")


class Hosts:
    """``n`` hosts (namespaces ``<tag>n0``…) at 10.231.0.1, .2, … on one switch."""

    def __init__(self, n: int):
        self.n = n
        self.tag = f"tp{secrets.token_hex(3)}"  # unique: another run's hosts are not ours
        self.switch = f"{self.tag}sw"
        self.names = [f"{self.tag}n{i}" for i in range(n)]

    def address(self, i: int) -> str:
        return f"{SUBNET}.{i + 1}"

    def __enter__(self) -> Hosts:
        try:
            _ip("netns", "add", self.switch)
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
            for i, ns in enumerate(self.names):
                host, port = f"{self.tag}h{i}", f"{self.tag}p{i}"
                _ip("netns", "add", ns)
                _ip("link", "add", host, "netns", ns, "type", "veth", "peer", port)
                _ip("link", "set", port, "netns", self.switch)
                _ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
                _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", host)
                _ip("-n", ns, "link", "set", host, "up")
                _ip("-n", ns, "link", "set", "lo", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for ns in [*self.names, self.switch]:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def tf_config(self, k: int, i: int) -> str:
        """TF_CONFIG for worker ``i`` of a cluster of the first ``k`` hosts."""
        workers = [f"{self.address(j)}:{PORT}" for j in range(k)]
        return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": i}})


@dataclass
class Outcome:
    codes: list[int]
    out: list[str]
    err: list[str]
    seconds: float

    def last(self, i: int) -> str:
        """What host i said last: its result line, else its error, else how it ended."""
        for text in (self.out[i], self.err[i]):
            if text.strip():
                return text.strip().splitlines()[-1]
        return f"(killed by signal {-self.codes[i]})" if self.codes[i] < 0 else ""


def train(hosts: Hosts, dirs: list[Path], env: dict, timeout: float = 600, **extra) -> Outcome:
    """``python stages/train.py`` on the first ``len(dirs)`` hosts, host i in ``dirs[i]``,
    the cluster from TF_CONFIG; waits for every one (killing all past ``timeout``)."""
    processes, files = [], []
    started = time.monotonic()
    with contextlib.ExitStack() as stack:
        try:
            for i, repo in enumerate(dirs):
                e = {**env, **extra, "TF_CONFIG": hosts.tf_config(len(dirs), i)}
                cmd = ["ip", "netns", "exec", hosts.names[i], sys.executable, "stages/train.py"]
                # output to files, not pipes: a host whose pipe filled would stall the cluster
                out, err = (stack.enter_context(tempfile.TemporaryFile("w+")) for _ in "oe")
                files.append((out, err))
                processes.append(
                    subprocess.Popen(
                        [*cmd, "data/prepared", "models/train"],
                        cwd=repo,
                        env=e,
                        stdout=out,
                        stderr=err,
                    )
                )
            for p in processes:
                p.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            pass  # the rest are killed below; what each said is still read
        finally:
            for p in processes:
                p.kill()
                p.wait()
        seconds = time.monotonic() - started
        said = []
        for out, err in files:
            out.seek(0), err.seek(0)
            said.append((out.read(), err.read()))
    return Outcome(
        [p.returncode for p in processes], [o for o, _ in said], [e for _, e in said], seconds
    )


def machines(root: Path, n: int, params: dict | None) -> list[Path]:
    """``n`` copies of the repository (tracked files, ``params`` over params.yaml), the data
    prepared in the first and copied to the others (what `dvc pull` would fetch there)."""
    from conftest import copy_repo, stage

    dirs = [copy_repo(root / f"host{i}", params) for i in range(n)]
    stage(dirs[0], "prepare", "data/raw/digits.csv", "data/prepared")
    for repo in dirs[1:]:
        shutil.copytree(dirs[0] / "data/prepared", repo / "data/prepared")
    return dirs


def timing(root: Path) -> tuple[float, float]:
    """Wall seconds of the train stage at the repository's params on one host, then on two."""
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import env

    dirs = machines(root, 2, None)
    with Hosts(2) as hosts:
        one = train(hosts, dirs[:1], env())
        shutil.rmtree(dirs[0] / "models/train")
        two = train(hosts, dirs, env())
    if one.codes != [0] or two.codes != [0, 0]:
        raise RuntimeError(f"hosts: training failed: {one.err[-1:]} {two.err}")
    return one.seconds, two.seconds


def main() -> int:
    """The repository's params on two hosts: fresh = the lock; worker 1 killed at step 700
    → both stop; resume with models/train only on the chief, on four hosts = the lock."""
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import ROOT, env, run

    why = unavailable()
    if why:
        print(f"hosts: skipped: {why}")
        return 0
    with tempfile.TemporaryDirectory(prefix="tfpersist-hosts-") as tmp, Hosts(4) as hosts:
        dirs = machines(Path(tmp), 4, {"train": {"collective_timeout": 60}})
        e = env()

        def show(title: str, o: Outcome, k: int) -> None:
            print(f"\n## {title}: {o.seconds:.0f} s")
            for i in range(k):
                print(f"host {i} ({hosts.address(i)}), exit {o.codes[i]}: {o.last(i)}")

        def lock_says() -> str:
            """`dvc commit` hashes the chief's models/train into its lock: the same as
            dvc.lock's train outs?"""
            import yaml

            shutil.copy(ROOT / "dvc.lock", dirs[0] / "dvc.lock")
            run([f"{sys.prefix}/bin/dvc", "commit", "--force", "train"], dirs[0])
            outs = [
                yaml.safe_load(path.read_text())["stages"]["train"]["outs"]
                for path in (ROOT / "dvc.lock", dirs[0] / "dvc.lock")
            ]
            md5 = outs[1][0]["md5"]
            return f"models/train {md5} = dvc.lock's" if outs[0] == outs[1] else f"{md5} ≠ lock"

        ok = True
        o = train(hosts, dirs[:1], e)
        show("one host", o, 1)
        shutil.rmtree(dirs[0] / "models/train")
        o = train(hosts, dirs[:2], e)
        show("two hosts, fresh", o, 2)
        said = lock_says()
        print(f"host 0: {said}")
        ok &= o.codes == [0, 0] and "= dvc.lock's" in said
        shutil.rmtree(dirs[0] / "models/train")
        o = train(hosts, dirs[:2], e, TFPERSIST_KILL_AT="step:700@1")
        show("two hosts, worker 1 killed at step 700", o, 2)
        ok &= o.codes[0] == 1 and o.codes[1] == -9
        o = train(hosts, dirs, e)
        show("four hosts resume, models/train on host 0 only", o, 4)
        said = lock_says()
        print(f"host 0: {said}")
        ok &= o.codes == [0] * 4 and "= dvc.lock's" in said
        ok &= not any((d / "models/train").exists() for d in dirs[1:])
    print("\nhosts: OK" if ok else "\nhosts: FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
