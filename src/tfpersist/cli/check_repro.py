"""``tfpersist check-repro``: rebuild a revision from scratch and compare it with dvc.lock."""

from __future__ import annotations

from pathlib import Path


def add_parser(sub, trust) -> None:
    p = sub.add_parser(
        "check-repro",
        help="rebuild a git revision from scratch and compare it with its dvc.lock",
    )
    p.add_argument("--rev", default="HEAD", help="git revision to check (default: HEAD)")
    p.add_argument("--repo", default=".", help="repository (default: .)")
    p.add_argument("--keep", action="store_true", help="keep the temp clone for a look")
    p.add_argument(
        "--tolerance",
        type=float,
        help="pass a stage whose outputs differ only by a max abs distance up to this "
        "(weights, model outputs, numbers in metrics), e.g. 3e-7 across CPU types",
    )
    p.add_argument("--report", help="also write the result as JSON here (e.g. check-repro.json)")
    p.set_defaults(func=cmd_check_repro)


def cmd_check_repro(args) -> int:
    from tfpersist import atomic, runtime
    from tfpersist.versions import reproducibility

    repo = Path(args.repo).resolve()
    env = runtime.describe()
    print(
        f"check-repro: rebuilding {args.rev} of {repo} from scratch (dvc repro --force) on "
        f"{env['cpu']} ({', '.join(env['cpu_flags'])}); stages pin their CPU instruction set "
        "from params.yaml runtime.cpu_isa",
        flush=True,
    )
    checks, where = reproducibility.check(repo, args.rev, args.keep, args.tolerance)
    width = max(len(c.stage) for c in checks)
    for c in checks:
        print(f"  {c.stage:<{width}}  {c.status}{': ' + c.detail if c.detail else ''}")
    if args.keep:
        print(f"check-repro: the rebuilt clone is in {where}")
    bad = [c for c in checks if not c.ok]
    if args.report:
        atomic.write_json(
            args.report,
            {
                "rev": args.rev,
                "ok": not bad,
                "tolerance": args.tolerance,
                "environment": env,
                "stages": [
                    {
                        "stage": c.stage,
                        "status": c.status,
                        "detail": c.detail,
                        "outputs": c.outputs,
                        "distance": c.distance,
                    }
                    for c in checks
                ],
            },
        )
    if bad:
        print(f"check-repro: FAILED: {len(bad)} of {len(checks)} stages did not reproduce")
        return 1
    within = [c for c in checks if c.status == "equivalent"]
    if within:
        print(
            f"check-repro: OK: {len(checks) - len(within)} stages bit for bit, "
            f"{len(within)} within {args.tolerance:g}"
        )
    else:
        print(f"check-repro: OK: all {len(checks)} stages reproduce dvc.lock bit for bit")
    return 0
