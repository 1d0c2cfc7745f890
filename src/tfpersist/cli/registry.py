"""``tfpersist release``, ``promote`` and ``demote``: GTO's versions and stages, made only when
their checks pass (versions/releasing.py)."""

from __future__ import annotations

from tfpersist.cli.common import add_repo, trust_from


def add_parser(sub, trust) -> None:
    p = sub.add_parser(
        "release",
        help="register the checked-out commit as NAME@vX.Y.Z (GTO tag) once git, dvc status "
        "and the DVC remote are in order",
        description="Refuses unless the git tree and 'dvc status' are clean and every output "
        "the commit tracks is on the DVC remote; the version's metrics go into the tag message.",
    )
    p.add_argument("name", help="the artifact, as dvc.yaml's artifacts: declares it (digits)")
    bump = p.add_mutually_exclusive_group()
    bump.add_argument("--version", help="vMAJOR.MINOR.PATCH (default: the latest, bumped)")
    for part in ("major", "minor", "patch"):
        bump.add_argument(
            f"--bump-{part}",
            dest="bump",
            action="store_const",
            const=part,
            help=f"bump the latest version's {part} number"
            + (" (the default)" if part == "minor" else ""),
        )
    p.add_argument(
        "--push",
        action="store_true",
        help="dvc push the outputs to the DVC remote first, then git push the tag to origin "
        "(without it nothing leaves this clone)",
    )
    p.add_argument(
        "--check-repro",
        action="store_true",
        help="also rebuild the commit from scratch and require it to match dvc.lock",
    )
    add_repo(p)
    p.set_defaults(func=cmd_release, bump="minor")

    p = sub.add_parser(
        "promote",
        parents=[trust],
        help="assign NAME's VERSION to STAGE (GTO tag) once it passes the gates against the "
        "version now in STAGE",
        description="Each --gate is an inequality on the version's DVC metrics, absolute or "
        "against the version now in the stage (its baseline), as MLflow's model validation: "
        "accuracy>=0.95, accuracy>=baseline-0.005, log_loss<=baseline*1.02. The signature "
        "(inputs, outputs, dtypes, shapes) must also equal the stage's version's.",
    )
    p.add_argument("name")
    p.add_argument("version", help="vX.Y.Z or latest")
    p.add_argument("stage", help="e.g. staging, prod")
    p.add_argument("--gate", action="append", default=[], metavar="METRIC>=BOUND")
    p.add_argument(
        "--allow-signature-change",
        action="store_true",
        help="promote even if the signature differs from the stage's version's",
    )
    p.add_argument("--push", action="store_true", help="push the tag to origin")
    add_repo(p)
    p.set_defaults(func=cmd_promote)

    p = sub.add_parser(
        "demote",
        help="take the version now in STAGE out of it; STAGE falls back to the one before",
    )
    p.add_argument("name")
    p.add_argument("stage")
    p.add_argument("--push", action="store_true", help="push the tag to origin")
    add_repo(p)
    p.set_defaults(func=cmd_demote)


def cmd_release(args) -> int:
    from tfpersist.versions import releasing

    check = None
    if args.check_repro:

        def check(repo):
            from tfpersist.versions import reproducibility

            checks, _ = reproducibility.check(repo, "HEAD", False, None)
            bad = [c for c in checks if not c.ok]
            if bad:
                raise releasing.Refused(
                    f"{args.name}: not released: stage '{bad[0].stage}' does not reproduce "
                    f"dvc.lock ({bad[0].status}: {bad[0].detail})"
                )

    done = releasing.release(args.repo, args.name, args.version, args.bump, args.push, check)
    print(f"released {done.label} ({done.sha[:7]}): {done.path}")
    return 0


def cmd_promote(args) -> int:
    from tfpersist.versions import gates, releasing

    wanted = [gates.parse(g) for g in args.gate]
    check = None if args.allow_signature_change else _signatures(args)
    done = releasing.promote(
        args.repo, args.name, args.version, args.stage, wanted, check, args.push
    )
    for outcome in done.outcomes:
        print(f"  {outcome.line()}")
    was = f" (was {done.current.label})" if done.current else " (first in this stage)"
    print(f"promoted {done.candidate.label} to '{args.stage}'{was}")
    return 0


def _signatures(args):
    """current, candidate → None when their signatures are equal, else the first difference
    (compare's signature section)."""

    def check(current, candidate) -> str | None:
        import tempfile
        from pathlib import Path

        from tfpersist import versions
        from tfpersist.versions import compare

        with tempfile.TemporaryDirectory(prefix="tfpersist-promote-") as scratch:
            a, b = (
                versions.load(v.label, args.repo, Path(scratch), trust=trust_from(args))
                for v in (current, candidate)
            )
            report = compare.compare_models(a, b, None, None, "", trust_from(args))
        return compare.differences(report, 0.0)["signature"]

    return check


def cmd_demote(args) -> int:
    from tfpersist.versions import releasing

    out, now = releasing.demote(args.repo, args.name, args.stage, args.push)
    print(
        f"{out.label} taken out of '{args.stage}'; {args.name}#{args.stage} → "
        + (f"{now.label} ({now.sha[:7]})" if now else "no version")
    )
    return 0
