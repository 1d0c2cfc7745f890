"""Model versions: ``PATH`` in the workspace or ``PATH@REV`` as DVC tracked it at a revision.

``PATH@REV`` takes a git revision, branch, tag or DVC experiment name; the artifact is read
through DVC (``dvc.api.DVCFileSystem``) from the local cache or a remote. No TensorFlow.

Imports: core, tfapi, numerics, tables, safety, graph, formats, freezing, running.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from tfpersist.core import layout
from tfpersist.core.errors import TfpersistError

REBUILD_HINT = "or pass --rebuild to reproduce it (checked against that revision's dvc.lock)"


class Unavailable(TfpersistError):
    """An artifact version that neither the local DVC cache nor the DVC remote holds."""


@dataclass(frozen=True)
class Version:
    spec: str  # what the user wrote
    path: Path  # a local path holding that version


def _say(line: str) -> None:
    import sys

    print(line, file=sys.stderr)


def split_spec(spec: str) -> tuple[str, str | None]:
    path, sep, rev = spec.rpartition("@")
    if not sep or not path or not rev:
        return spec, None
    return path, rev


def materialize(
    spec: str, repo: str | Path, scratch: Path, rebuild: bool = False, log=None
) -> Version:
    """Make ``spec`` available as a local path (fetching ``PATH@REV`` into ``scratch``).

    ``PATH@REV`` comes from the local DVC cache or the default remote; with ``rebuild``, a
    version found in neither is reproduced in a clean clone of ``REV`` and used only if its
    hash equals the one in that revision's dvc.lock. ``NAME@vX.Y.Z``, ``NAME@latest`` and
    ``NAME#STAGE`` name a registered artifact (registry.py): resolved by GTO, said through
    ``log`` (stderr), fetched the same way, and called by its version (``digits@v1.0.0``).
    """
    from tfpersist.versions import registry

    if registry.parse(spec) and not Path(spec).exists():
        found = registry.resolve(repo, spec)
        if found.label != spec:
            (log or _say)(found.said())
        where = scratch / _safe(found.label) / found.path
        target = fetch(repo, found.sha, found.path, where, rev=found.label, sidecars=True)
        return Version(found.label, target)
    path, rev = split_spec(spec)
    if rev is None:
        local = Path(path)
        if not local.exists():
            raise TfpersistError(
                f"{path}: no such file or directory (run 'dvc pull' or 'dvc repro'?)"
            )
        return Version(spec, local)
    sha = resolve(repo, rev, spec)
    try:
        target = fetch(repo, sha, path, scratch / _safe(rev) / path, rev=rev, sidecars=True)
    except Unavailable:
        if not rebuild:
            raise
        return Version(spec, rebuilt(Path(repo), sha, path, scratch / f"rebuilt-{_safe(rev)}"))
    return Version(spec, target)


def load(
    spec: str, repo, scratch: Path, output_nodes=None, trust=None, rebuild=False, architecture=None
):
    """``spec`` (``PATH`` or ``PATH@REV``, see ``materialize``) frozen in memory with its
    names (freezing.models.Model): one side of compare, the source of export; weights-only
    Keras files and TF2 checkpoints restored into ``architecture``."""
    from tfpersist import safety
    from tfpersist.freezing import models

    version = materialize(spec, repo, scratch, rebuild)
    return models.load_model(
        version.path,
        output_nodes,
        trust or safety.TRUST_NOTHING,
        spec=version.spec,
        architecture=architecture,
    )


def fetch(
    repo: str | Path,
    sha: str,
    path: str,
    target: Path,
    names: list[str] | tuple[str, ...] = (),
    *,
    rev: str | None = None,
    sidecars: bool = False,
    hint: str = REBUILD_HINT,
) -> Path:
    """Copy ``path`` as DVC tracked it at commit ``sha`` to ``target`` (returned), from the
    local DVC cache or the default remote.

    The file or directory itself, or, given ``names``, only those files of the directory
    ``path`` (into the directory ``target``); with ``sidecars``, a model file's cards
    (``X.json`` for ``X.pb``, and ``signature.json``) beside it. Messages call the revision
    ``rev`` (default: the short sha). A path that did not exist at ``sha`` is a
    TfpersistError; a version in neither place is ``Unavailable``, saying why and ending
    with ``hint``.
    """
    from dvc.api import DVCFileSystem

    rev = rev or sha[:10]
    fs = DVCFileSystem(str(repo), rev=sha)
    if not fs.exists(path):
        raise TfpersistError(f"{path}@{rev}: '{path}' did not exist at revision '{rev}'")
    (target if names else target.parent).mkdir(parents=True, exist_ok=True)
    source = path
    try:
        if names:
            for name in names:
                source = f"{path}/{name}"
                fs.get(source, str(target / name))
        else:
            fs.get(path, str(target), recursive=True)
            if sidecars and not fs.isdir(path):
                card = Path(path).with_suffix(layout.CARD_SUFFIX).name  # X.pb → X.json
                for name in dict.fromkeys((card, layout.SIGNATURE)):
                    sidecar = str(Path(path).parent / name)
                    if fs.exists(sidecar):
                        fs.get(sidecar, str(target.parent / name))
    except Exception:
        shutil.rmtree(target, ignore_errors=True)
        raise unavailable(repo, f"{source}@{rev}", hint) from None
    return target


def default_remote(repo: str | Path) -> tuple[str, str, str | None] | None:
    """(name, url, endpoint url) of the repository's default DVC remote, or None."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        config = dvc_repo.config
        name = config["core"].get("remote")
        if not name or name not in config["remote"]:
            return None
        remote = config["remote"][name]
        return name, remote.get("url", ""), remote.get("endpointurl")


def unavailable(repo: str | Path, what: str, hint: str = REBUILD_HINT) -> Unavailable:
    """Why ``what`` could not be fetched, truthfully: no remote, remote down, or not on it."""
    remote = default_remote(repo)
    if remote is None:
        return Unavailable(
            f"{what}: not in the local DVC cache, and no DVC remote is configured "
            f"('dvc remote add -d NAME URL'); {hint.removeprefix('or ')}"
        )
    name, url, endpoint = remote
    down = _down(name, endpoint)
    if down:
        return Unavailable(f"{what}: not in the local DVC cache, and {down}; {hint}")
    return Unavailable(
        f"{what}: neither in the local DVC cache nor on the DVC remote '{name}' ({url}); "
        f"'dvc push' it from a clone that has it, {hint}"
    )


def remote_down(repo: str | Path) -> str | None:
    """Why the default DVC remote cannot be reached before anything talks to it (None: it
    answers, or is not one this can tell): this clone's local store not started, with what
    starts it and how a team points the remote at a shared bucket instead."""
    remote = default_remote(repo)
    return None if remote is None else _down(remote[0], remote[2])


def _down(name: str, endpoint: str | None) -> str | None:
    """remote_down's line for the remote ``name`` at ``endpoint``."""
    if endpoint and _local(endpoint) and not _answers(endpoint):
        return (
            f"the DVC remote '{name}' ({endpoint}) does not answer: 'make remote-up' starts "
            "this clone's own store (.remote/), or point the remote at your team's bucket "
            f"('dvc remote modify --local {name} endpointurl URL' and its url and keys)"
        )
    return None


def _local(url: str) -> bool:
    from urllib.parse import urlparse

    return urlparse(url).hostname in ("127.0.0.1", "localhost", "::1")


def _answers(url: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def rebuilt(repo: Path, sha: str, path: str, workdir: Path) -> Path:
    """``path`` reproduced from a clean clone at ``sha``, verified against its dvc.lock."""
    from tfpersist.versions import rebuild

    if workdir.exists():
        shutil.rmtree(workdir)
    clone = rebuild.clone(repo, sha, workdir)
    lock = clone / layout.DVC_LOCK
    if not lock.is_file():
        raise TfpersistError(f"{path}@{sha[:10]}: no dvc.lock at that revision to check against")
    committed = rebuild.load_lock(lock.read_text())
    rebuild.rebuild(clone)
    checks = rebuild.compare_locks(committed, rebuild.load_lock(lock.read_text()))
    bad = [c for c in checks if not c.ok]
    if bad:
        raise TfpersistError(
            f"{path}@{sha[:10]}: rebuilt here, but stage '{bad[0].stage}' does not match that "
            f"revision's dvc.lock ({bad[0].status}: {bad[0].detail}); not used"
        )
    return clone / path


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
