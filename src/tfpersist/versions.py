"""Model versions: ``PATH`` in the workspace or ``PATH@REV`` as DVC tracked it at a revision.

``PATH@REV`` takes a git revision, branch, tag or DVC experiment name; the artifact is read
through DVC (``dvc.api.DVCFileSystem``) from the local cache or a remote. No TensorFlow.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from tfpersist.errors import TfpersistError

SIDECARS = ("model.json", "signature.json")  # cards that travel with a model file


@dataclass(frozen=True)
class Version:
    spec: str  # what the user wrote
    path: Path  # a local path holding that version
    rev: str | None  # None: the workspace


def split_spec(spec: str) -> tuple[str, str | None]:
    path, sep, rev = spec.rpartition("@")
    if not sep or not path or not rev:
        return spec, None
    return path, rev


def materialize(spec: str, repo: str | Path, scratch: Path) -> Version:
    """Make ``spec`` available as a local path (fetching ``PATH@REV`` into ``scratch``)."""
    path, rev = split_spec(spec)
    if rev is None:
        local = Path(path)
        if not local.exists():
            raise TfpersistError(
                f"{path}: no such file or directory (run 'dvc pull' or 'dvc repro'?)"
            )
        return Version(spec, local, None)
    from dvc.api import DVCFileSystem

    sha = resolve(repo, rev, spec)
    fs = DVCFileSystem(str(repo), rev=sha)
    exists = fs.exists(path)
    if not exists:
        raise TfpersistError(f"{spec}: '{path}' did not exist at revision '{rev}'")
    target = scratch / _safe(rev) / path
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fs.get(path, str(target), recursive=True)
        for name in SIDECARS:
            sidecar = str(Path(path).parent / name)
            if not fs.isdir(path) and fs.exists(sidecar):
                fs.get(sidecar, str(target.parent / name))
    except Exception as e:
        shutil.rmtree(target, ignore_errors=True)
        raise TfpersistError(
            f"{spec}: not in the local DVC cache ({type(e).__name__}); run 'dvc pull' to fetch it"
        ) from None
    return Version(spec, target, rev)


def resolve(repo: str | Path, rev: str, spec: str) -> str:
    """The commit a git revision, branch, tag or DVC experiment name points at."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    from dvc.scm import RevError, resolve_rev

    try:
        with Repo(str(repo)) as dvc_repo:
            return resolve_rev(dvc_repo.scm, rev)
    except NotDvcRepoError:
        raise TfpersistError(
            f"{spec}: {repo} is not a DVC repository; PATH@REV needs one"
        ) from None
    except RevError:
        raise TfpersistError(
            f"{spec}: unknown revision '{rev}'; use a commit, branch, tag or DVC experiment name"
        ) from None


def _safe(rev: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in rev)


def digest(path: Path) -> tuple[str, int]:
    """sha256 and size of a file, or of a directory's files (names and bytes)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    size = 0
    for f in files:
        data = f.read_bytes()
        size += len(data)
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        h.update(data)
    return h.hexdigest(), size
