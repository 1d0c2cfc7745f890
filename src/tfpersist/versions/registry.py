"""Model versions by name: ``NAME@vX.Y.Z``, ``NAME@latest`` and ``NAME#STAGE`` (``sub:NAME``
for an artifact of a nested dvc.yaml), resolved with GTO's own API from its git tags — never
with DVC's stage lookup, which after a rollback (``gto deprecate NAME VERSION STAGE``) or a
deregistration still answers the version that was taken back.

The artifact's path is read from ``artifacts:`` in the dvc.yaml of the version's own commit;
the file itself is then fetched through DVC (cache, then remote) like any ``PATH@REV``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from tfpersist.core.errors import TfpersistError

VERSION = re.compile(r"^v\d+\.\d+\.\d+$")
SPEC = re.compile(
    r"^(?:(?P<sub>[\w.\-/]+):)?(?P<name>[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)"
    r"(?:@(?P<version>v\d+\.\d+\.\d+|latest)|#(?P<stage>[\w.\-]+))$"
)


class NotFound(TfpersistError):
    """A name, version or stage that the registry does not hold."""


@dataclass(frozen=True)
class Resolved:
    spec: str  # as the user wrote it
    name: str  # GTO's artifact name (sub:NAME for a nested dvc.yaml)
    version: str
    sha: str
    path: str  # the artifact's file, repository-relative

    @property
    def label(self) -> str:
        """``digits@v1.0.0``: how reports name it."""
        return f"{self.name}@{self.version}"

    def said(self) -> str:
        """``digits#prod → digits@v1.0.0 (abc1234)``."""
        return f"{self.spec} → {self.label} ({self.sha[:7]})"


def parse(spec: str):
    """The match of an artifact spec, or None for a path (``model.pb@v1``, a file)."""
    return SPEC.match(spec)


def resolve(repo: str | Path, spec: str) -> Resolved:
    """The version and commit ``spec`` names, by GTO; one line listing what exists when the
    name, version or stage is unknown."""
    import gto.api

    match = parse(spec)
    if match is None:
        raise TfpersistError(f"{spec}: not NAME@vX.Y.Z, NAME@latest or NAME#STAGE")
    sub, short = match["sub"], match["name"]
    name = f"{sub}:{short}" if sub else short
    try:
        versions = gto.api.show(str(repo), name)
    except Exception:  # gto raises its own errors for an unknown artifact or no repo
        known = ", ".join(artifacts(repo)) or "none declared in dvc.yaml"
        raise NotFound(f"{spec}: no artifact '{name}' (artifacts: {known})") from None
    active = [v for v in versions if v.get("is_active", True) and not v.get("discovered")]
    if not active:
        known = ", ".join(artifacts(repo)) or "none"
        raise NotFound(f"{spec}: no registered version of '{name}' (artifacts: {known})")
    if match["stage"]:
        stage = match["stage"]
        found = gto.api.find_versions_in_stage(str(repo), name, stage)
        if not found:
            stages = sorted({s["stage"] for v in active for s in v.get("stages", [])})
            raise NotFound(
                f"{spec}: no version of '{name}' is in stage '{stage}' "
                f"(stages: {', '.join(stages) or 'none'})"
            )
        chosen = found[0] if isinstance(found, list) else found
        version, sha = chosen.version, chosen.commit_hexsha
    elif match["version"] == "latest":
        latest = gto.api.find_latest_version(str(repo), name)
        version, sha = latest.version, latest.commit_hexsha
    else:
        wanted = match["version"]
        hit = [v for v in active if v["version"] == wanted]
        if not hit:
            listed = ", ".join(v["version"] for v in active)
            raise NotFound(
                f"{spec}: '{name}' has no registered version {wanted} (versions: {listed})"
            )
        version, sha = wanted, hit[0]["commit_hexsha"]
    return Resolved(spec, name, version, sha, _path(repo, sha, sub, short, spec))


def _declared_all(repo, sub: str | None = None) -> dict:
    try:
        text = (Path(repo) / (sub or "") / "dvc.yaml").read_text()
    except OSError:
        return {}
    return (yaml.safe_load(text) or {}).get("artifacts") or {}


def artifacts(repo) -> list[str]:
    """The artifacts the workspace's dvc.yaml declares."""
    return sorted(_declared_all(repo))


def declared(repo, name: str) -> dict | None:
    """``name``'s (``sub:NAME`` too) declaration in the workspace's dvc.yaml, or None."""
    sub, _, short = name.rpartition(":")
    return _declared_all(repo, sub or None).get(short)


def _path(repo, sha: str, sub: str | None, name: str, spec: str) -> str:
    """The artifact's path as dvc.yaml declared it at ``sha``."""
    import subprocess

    dvc_yaml = f"{sub}/dvc.yaml" if sub else "dvc.yaml"
    shown = subprocess.run(
        ["git", "show", f"{sha}:{dvc_yaml}"], cwd=repo, capture_output=True, text=True
    )
    declared = (yaml.safe_load(shown.stdout) or {}).get("artifacts") or {}
    if shown.returncode or name not in declared or "path" not in declared[name]:
        raise TfpersistError(
            f"{spec}: commit {sha[:7]}'s {dvc_yaml} declares no artifact '{name}' with a path"
        )
    path = declared[name]["path"]
    return f"{sub}/{path}" if sub else path
