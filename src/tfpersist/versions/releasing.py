"""Release and promote registered versions: GTO's tags, made only when they are safe to make.

``release`` registers the commit as ``NAME@vX.Y.Z`` only if the git tree and ``dvc status``
are clean and every output the commit tracks is on the DVC remote (so that any clone can
fetch the version), the version's metrics written into the tag's message. ``promote`` assigns
a version to a stage only if it passes the gates (gates.py) against the version now in the
stage and keeps its signature; ``demote`` takes the stage's version back, so the stage falls
back to the one assigned before it. Tags stay GTO's own (``NAME@v1.2.0``, ``NAME#prod#3``,
``NAME#prod!#4``): gto, DVC and DVC Studio read them.

Imports: the core and versions (``promote`` compares signatures through TensorFlow's C
library; TensorFlow's Python layer only for a model that must be frozen in a session).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tfpersist import versions
from tfpersist.core.errors import TfpersistError
from tfpersist.versions import gates as gating
from tfpersist.versions import registry


class Refused(TfpersistError):
    """A release or promotion that its checks stopped."""


@dataclass(frozen=True)
class Promotion:
    candidate: registry.Resolved
    current: registry.Resolved | None  # the version in the stage before
    outcomes: list[gating.Outcome]
    signature: str | None  # how the signatures differ, None when equal or not compared


def _git(repo, *args) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if done.returncode:
        raise TfpersistError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout


def metrics_at(repo: str | Path, sha: str) -> dict[str, float]:
    """The commit's DVC metrics (every ``metrics:`` file DVC can read there, from git, the
    cache or the remote), flattened: ``accuracy``, ``recall.3``; a key two files share is
    named ``FILE:key`` in each."""
    from dvc.repo import Repo

    with Repo(str(repo)) as dvc_repo:
        shown = dvc_repo.metrics.show(revs=[sha], hide_workspace=True)
    files = (shown.get(sha) or {}).get("data") or {}
    per_file = {path: gating.flatten(entry.get("data") or {}) for path, entry in files.items()}
    count: dict[str, int] = {}
    for values in per_file.values():
        for key in values:
            count[key] = count.get(key, 0) + 1
    return {
        (key if count[key] == 1 else f"{path}:{key}"): value
        for path, values in sorted(per_file.items())
        for key, value in values.items()
    }


def problems(repo: str | Path, name: str) -> list[str]:
    """Why the commit checked out in ``repo`` may not be released as ``name`` (empty: none)."""
    from dvc.repo import Repo

    found = []
    dirty = [line for line in _git(repo, "status", "--porcelain").splitlines() if line]
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:3]) + (" …" if len(dirty) > 3 else "")
        found.append(f"the git tree is not clean ({shown}): commit or stash first")
    declared = registry.declared(repo, name)
    if declared is None:
        known = ", ".join(registry.artifacts(repo)) or "none"
        found.append(f"dvc.yaml declares no artifact '{name}' (artifacts: {known})")
    with Repo(str(repo)) as dvc_repo:
        changed = dvc_repo.status()
        if changed:
            stages = ", ".join(sorted(changed)[:3]) + (" …" if len(changed) > 3 else "")
            found.append(f"dvc status is not clean ({stages}): run 'dvc repro' and commit dvc.lock")
        remote = dvc_repo.config["core"].get("remote")
        down = versions.remote_down(repo) if remote else None
        if not remote:
            found.append("no default DVC remote to hold the version ('dvc remote add -d')")
        elif down:
            found.append(down)
        else:
            try:
                missing = dvc_repo.status(cloud=True)
            except Exception as e:  # the remote does not answer
                found.append(f"the DVC remote '{remote}' cannot be checked: {e}")
            else:
                tops = [
                    k for k in sorted(missing) if not any(k.startswith(f"{m}/") for m in missing)
                ]
                if tops:
                    outs = ", ".join(tops[:3]) + (" …" if len(tops) > 3 else "")
                    found.append(
                        f"not on the DVC remote '{remote}': {outs} ('dvc push' first, or "
                        "release --push)"
                    )
    return found


def message(name: str, version: str, metrics: dict[str, float]) -> str:
    """The tag's message: the version and its top-level metrics (what gto show and git show
    print), one per line."""
    top = {k: v for k, v in metrics.items() if "." not in k.split(":")[-1]}
    lines = [f"{name}@{version}", ""] + [f"{k}: {v:g}" for k, v in sorted(top.items())]
    return "\n".join(lines).rstrip() + "\n"


def next_version(repo: str | Path, name: str, bump: str) -> str:
    """The version after the latest registered one (v0.1.0 for the first), bumped by
    ``bump``: major, minor or patch."""
    import gto.api

    try:
        latest = gto.api.find_latest_version(str(repo), name)
    except Exception:
        latest = None
    if latest is None:
        return "v0.1.0" if bump != "major" else "v1.0.0"
    major, minor, patch = (int(p) for p in latest.version.lstrip("v").split("."))
    if bump == "major":
        return f"v{major + 1}.0.0"
    if bump == "minor":
        return f"v{major}.{minor + 1}.0"
    return f"v{major}.{minor}.{patch + 1}"


def release(
    repo: str | Path,
    name: str,
    version: str | None = None,
    bump: str = "minor",
    push: bool = False,
    check_repro=None,
) -> registry.Resolved:
    """Register HEAD as ``name@version`` (default: the latest bumped by ``bump``) once the
    checks pass; with ``push``, push the DVC outputs first and the tag after. ``check_repro``:
    a callable run last that raises if the commit does not reproduce."""
    import gto.api

    if version is not None and not registry.VERSION.match(version):
        raise Refused(f"--version {version}: write it as vMAJOR.MINOR.PATCH, e.g. v1.2.0")
    if push:
        _push_outputs(repo)
    found = problems(repo, name)
    if found:
        raise Refused(f"{name}: not released: " + "; ".join(found))
    version = version or next_version(repo, name, bump)
    sha = _git(repo, "rev-parse", "HEAD").strip()
    taken = _registered_at(repo, name, sha)
    if taken:
        raise Refused(f"{name}: commit {sha[:7]} is already registered as {name}@{taken}")
    if check_repro is not None:
        check_repro(repo)
    text = message(name, version, metrics_at(repo, sha))
    try:
        gto.api.register(str(repo), name, "HEAD", version=version, message=text, push=push)
    except Exception as e:  # gto's own refusals: the version exists, …
        raise Refused(f"{name}@{version}: gto register refused: {e}") from None
    return registry.resolve(repo, f"{name}@{version}")


def _registered_at(repo, name: str, sha: str) -> str | None:
    import gto.api

    try:
        versions = gto.api.show(str(repo), name)
    except Exception:
        return None
    hit = [
        v["version"] for v in versions if v.get("commit_hexsha") == sha and v.get("is_active", True)
    ]
    return hit[0] if hit else None


def _push_outputs(repo) -> None:
    from dvc.repo import Repo

    down = versions.remote_down(repo)
    if down:
        raise Refused(f"dvc push: {down}")
    with Repo(str(repo)) as dvc_repo:
        try:
            dvc_repo.push()
        except Exception as e:
            raise Refused(f"dvc push failed: {e}") from None


def in_stage(repo: str | Path, name: str, stage: str) -> registry.Resolved | None:
    try:
        return registry.resolve(repo, f"{name}#{stage}")
    except registry.NotFound:
        return None


def promote(
    repo: str | Path,
    name: str,
    version: str,
    stage: str,
    gates: list[gating.Gate],
    signature_check=None,
    push: bool = False,
) -> Promotion:
    """Assign ``name@version`` to ``stage`` once every gate passes against the version now in
    the stage and ``signature_check(current, candidate)`` (None when they match, else how they
    differ) finds none; Refused (with every gate's line) otherwise."""
    import gto.api

    candidate = registry.resolve(repo, f"{name}@{version}")
    current = in_stage(repo, candidate.name, stage)
    if current is not None and current.version == candidate.version:
        raise Refused(f"{candidate.label} is already in stage '{stage}'")
    baseline = metrics_at(repo, current.sha) if current is not None else None
    outcomes = gating.check(gates, metrics_at(repo, candidate.sha), baseline)
    differs = signature_check(current, candidate) if signature_check and current else None
    result = Promotion(candidate, current, outcomes, differs)
    failed = [o for o in outcomes if o.passed is False]
    if failed or differs:
        why = [o.why() for o in failed] + ([f"signature differs: {differs}"] if differs else [])
        raise Refused(f"{candidate.label} not promoted to '{stage}': " + "; ".join(why))
    text = "\n".join(
        [f"{candidate.label} → {stage}", ""]
        + [f"was {current.label}" if current else "first in this stage"]
        + [o.line() for o in outcomes]
    )
    try:
        gto.api.assign(
            str(repo), candidate.name, stage, version=candidate.version, message=text, push=push
        )
    except Exception as e:
        raise Refused(f"{candidate.label}: gto assign refused: {e}") from None
    return result


def demote(
    repo: str | Path, name: str, stage: str, push: bool = False
) -> tuple[registry.Resolved, registry.Resolved | None]:
    """Take the version now in ``stage`` out of it (GTO's ``NAME#STAGE!#N`` tag); the stage
    then answers the version assigned before it, or none. (taken out, now in the stage)."""
    import gto.api

    current = registry.resolve(repo, f"{name}#{stage}")
    try:
        gto.api.unassign(
            str(repo),
            current.name,
            version=current.version,
            stage=stage,
            message=f"{current.label} out of {stage}",
            push=push,
        )
    except Exception as e:
        raise Refused(f"{current.label}: gto unassign refused: {e}") from None
    return current, in_stage(repo, current.name, stage)
