"""What a server serves: one model name and its versions, as TF Serving manages them.

A ``Catalog`` holds one model (version 1), or a base directory of numbered versions
(``BASE/1/``, ``BASE/2/`` … — the layout the export stage writes for the SavedModel), polled
for new ones. A new version is loaded and warmed (one request of zeros) before it takes
traffic; the version it replaces stops taking new requests, finishes the ones in flight, and
is closed only then (TF Serving's availability-preserving policy). It serves the latest
version and every version a label names (``stable=3``).

A version that fails to load is reported (state END, its error) and tried again only when its
directory changes. No TensorFlow here: ``open_model`` does the loading.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfpersist.core.errors import TfpersistError, first_line

START, LOADING, AVAILABLE, UNLOADING, END = "START", "LOADING", "AVAILABLE", "UNLOADING", "END"


class NotFound(TfpersistError):
    """No such model or version (HTTP 404, gRPC NOT_FOUND); an unknown label is a bad request
    (400, INVALID_ARGUMENT), as in TF Serving."""


def no_version(name: str, version: int) -> NotFound:
    return NotFound(f"Could not find version {version} of model {name}")


class Unavailable(TfpersistError):
    """Nothing to serve yet (HTTP 503, gRPC UNAVAILABLE)."""


@dataclass
class Servable:
    version: int
    path: Path
    model: object = None
    state: str = START
    error: str = ""
    in_flight: int = 0
    stamp: float = 0.0  # the directory's mtime when it was loaded (or failed to)
    run_seconds: float = float("inf")  # one warm run of one row
    labels: list[str] = field(default_factory=list)


def warm(model) -> float:
    """Run ``model`` on zeros (one row where the batch size is free) so that the first real
    request does not pay for kernels' first runs; the seconds the second run took (inf when
    the inputs' shapes or types leave no zeros to make)."""
    import time

    feeds = {}
    for t in model.inputs:
        if t.shape is None or t.dtype in ("string", "object"):
            return float("inf")
        feeds[t.name] = np.zeros([1 if d is None else d for d in t.shape], dtype=t.dtype)
    model.run(feeds)
    start = time.perf_counter()
    model.run(feeds)
    return time.perf_counter() - start


def versions_in(base: Path) -> dict[int, Path]:
    """The numbered version directories under ``base``."""
    found = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            if entry.is_dir() and entry.name.isdigit():
                found[int(entry.name)] = Path(entry.path)
    return found


def is_base_dir(path: Path) -> bool:
    """A directory of numbered versions (and nothing that is itself a model)."""
    return path.is_dir() and bool(versions_in(path)) and not (path / "saved_model.pb").exists()


def model_in(directory: Path) -> Path:
    """What to open in a version directory: the directory itself (a SavedModel) or its one
    model file."""
    if (directory / "saved_model.pb").exists() or (directory / "saved_model.pbtxt").exists():
        return directory
    files = [
        p
        for p in sorted(directory.iterdir())
        if p.suffix in (".pb", ".onnx", ".tflite", ".keras") and p.is_file()
    ]
    if len(files) != 1:
        raise TfpersistError(
            f"{directory}: a version directory holds a SavedModel or one model file "
            f"(.pb, .onnx, .tflite, .keras); found {len(files)}"
        )
    return files[0]


class Catalog:
    """The versions of one model. ``use(version=None, label=None)`` hands out a loaded
    version for one request (a context manager); ``refresh()`` looks for new versions."""

    def __init__(
        self,
        name: str,
        opener,
        *,
        model=None,
        base: Path | None = None,
        source=None,
        labels: dict[str, int] | None = None,
        on_change=None,
    ):
        """``model``: one model, version 1; ``base``: a directory of numbered versions;
        ``source``: a callable answering {version: directory or file} to serve now (the
        registry's stage: registry_source)."""
        self.name, self._open, self.base = name, opener, base
        self._source = source or (None if base is None else lambda: versions_in(base))
        self.labels = dict(labels or {})
        self._lock = threading.Lock()
        self._versions: dict[int, Servable] = {}
        self._current: int | None = None  # the version the source names latest
        self._on_change = on_change or (lambda line: None)
        self.draining = False  # a drain has begun: /readyz answers 503 (nothing else)
        if model is not None:
            one = Servable(1, Path(getattr(model, "source", "model")), model, AVAILABLE)
            one.run_seconds = warm(model)
            self._versions[1] = one

    @property
    def polled(self) -> bool:
        return self._source is not None

    # -- requests ------------------------------------------------------------------------

    def latest(self) -> Servable | None:
        with self._lock:
            return self._newest()

    def _newest(self) -> Servable | None:  # under the lock
        ready = [s for s in self._versions.values() if s.state == AVAILABLE]
        wanted = [s for s in ready if s.version == self._current]
        if wanted:  # the source's latest (a stage rolled back may answer a lower number)
            return wanted[0]
        return max(ready, key=lambda s: s.version) if ready else None

    def acquire(self, version: int | None = None, label: str | None = None) -> Servable:
        """The version a request asks for (default: the latest available), held until
        ``release``; NotFound or Unavailable otherwise. Draining refuses nothing here: a
        request that reaches this arrived before the drain began (server.py)."""
        with self._lock:
            if label is not None:
                if label not in self.labels:  # TF Serving's InvalidArgument: HTTP 400
                    raise TfpersistError(f"Unrecognized servable version label: {label}")
                version = self.labels[label]
            if version is None:
                chosen = self._newest()
                if chosen is None:
                    raise Unavailable(f"no version of model {self.name} is available yet")
            else:
                chosen = self._versions.get(version)
                if chosen is None or chosen.state != AVAILABLE:
                    raise NotFound(
                        f"Servable not found for request: Specific({self.name}, {version})"
                    )
            chosen.in_flight += 1
        return chosen

    def release(self, servable: Servable) -> None:
        with self._lock:
            servable.in_flight -= 1
            done = servable.state == UNLOADING and servable.in_flight == 0
        if done:
            self._unload(servable)

    @contextlib.contextmanager
    def use(self, version: int | None = None, label: str | None = None):
        servable = self.acquire(version, label)
        try:
            yield servable
        finally:
            self.release(servable)

    def states(self) -> list[Servable]:
        with self._lock:
            return sorted(self._versions.values(), key=lambda s: -s.version)

    def in_flight(self) -> int:
        with self._lock:
            return sum(s.in_flight for s in self._versions.values())

    # -- versions ------------------------------------------------------------------------

    def refresh(self) -> None:
        """Load what the source now asks for (its latest version and the labelled ones),
        warm it, then retire what is no longer asked for once what is asked for serves."""
        if self._source is None:
            return
        present = self._source()
        wanted = set()
        if present:
            self._current = max(present)
            wanted.add(self._current)
        wanted |= {v for v in self.labels.values() if v in present}
        for version in sorted(wanted):
            self._load(version, present[version])
        with self._lock:
            serving = any(
                self._versions[v].state == AVAILABLE for v in wanted if v in self._versions
            )  # never leave nothing
            retire = [
                s
                for v, s in self._versions.items()
                if serving and v not in wanted and s.state == AVAILABLE
            ]
            for s in retire:
                s.state = UNLOADING
            idle = [s for s in retire if s.in_flight == 0]
        for s in idle:
            self._unload(s)

    def _load(self, version: int, directory: Path) -> None:
        stamp = directory.stat().st_mtime if directory.exists() else 0.0
        with self._lock:
            known = self._versions.get(version)
            failed_as_is = known is not None and known.error and known.stamp == stamp
            if known is not None and (known.state != END or failed_as_is):
                return
            servable = Servable(version, directory, state=LOADING, stamp=stamp)
            self._versions[version] = servable
        try:
            model = self._open(model_in(directory) if directory.is_dir() else directory)
            seconds = warm(model)
        except Exception as e:  # a half-written or broken version: reported, not fatal
            with self._lock:
                servable.state, servable.error = END, first_line(e)
            self._on_change(f"version {version} failed to load: {servable.error}")
            return
        with self._lock:
            servable.model, servable.state, servable.run_seconds = model, AVAILABLE, seconds
        self._on_change(f"version {version} AVAILABLE ({directory})")

    def _unload(self, servable: Servable) -> None:
        with self._lock:
            if servable.state != UNLOADING:
                return
            servable.state = END
            model, servable.model = servable.model, None
        if model is not None:
            model.close()
        self._on_change(f"version {servable.version} unloaded")

    def close(self) -> None:
        with self._lock:
            models = [s.model for s in self._versions.values() if s.model is not None]
            for s in self._versions.values():
                s.model, s.state = None, END
        for model in models:
            model.close()


def semver_number(version: str) -> int:
    """``v1.2.3`` → 1002003: a registered version as TF Serving's integer version."""
    major, minor, patch = (int(p) for p in version.lstrip("v").split("."))
    return major * 1_000_000 + minor * 1_000 + patch


def registry_source(spec: str, repo, scratch: Path, say=lambda line: None):
    """A Catalog source following a registry stage (``digits#prod``): resolved with GTO on
    every poll, a new version fetched through DVC into ``scratch``; {version number: file}.
    A resolution that fails keeps what was served (said once)."""
    import subprocess

    from tfpersist import versions
    from tfpersist.versions import registry

    fetched: dict[str, tuple[int, Path]] = {}
    last = {"said": "", "tags": None, "answer": {}}

    def source() -> dict[int, Path]:
        tags = subprocess.run(
            ["git", "show-ref", "--tags"], cwd=repo, capture_output=True, text=True
        ).stdout
        if tags == last["tags"]:  # no tag made or removed: GTO would answer the same
            return last["answer"]
        try:
            found = registry.resolve(repo, spec)
            if found.sha not in fetched:
                path = versions.materialize(found.label, repo, scratch / found.sha[:12]).path
                fetched[found.sha] = (semver_number(found.version), path)
                say(f"{found.said()}: version {fetched[found.sha][0]}")
        except Exception as e:  # the repository mid-change, the remote down: try again
            if str(e) != last["said"]:
                last["said"] = str(e)
                say(f"{spec}: {first_line(e)}; serving what was loaded")
            return {}
        number, path = fetched[found.sha]
        last["tags"], last["answer"] = tags, {number: path}
        return last["answer"]

    return source


class Poller:
    """``catalog.refresh()`` every ``seconds`` on a thread of its own (TF Serving polls its
    file system every second)."""

    def __init__(self, catalog: Catalog, seconds: float = 1.0):
        self.catalog, self.seconds = catalog, seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="tfpersist-poll")

    def start(self) -> Poller:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            self.catalog.refresh()

    def stop(self, wait: bool = True) -> None:
        """No refresh begins from here; ``wait``: until one under way has ended (≤ 30 s)."""
        self._stop.set()
        if wait:
            self._thread.join(timeout=30)
