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
    p.add_argument(
        "--probe",
        action="store_true",
        help="instead: train the wide probe here (contractions up to K = 1024, seconds) and "
        "compare its bytes with the hashes bench/ledger.csv's rows agree on",
    )
    p.add_argument(
        "--l1d",
        type=int,
        metavar="KIB",
        help="with --probe: train it as a CPU with this L1 data cache (KiB) would",
    )
    p.set_defaults(func=cmd_check_repro)


def cmd_probe(args) -> int:
    from tfpersist import cpucache, runtime
    from tfpersist.errors import TfpersistError
    from tfpersist.versions import ledger

    if args.l1d is not None and not 1 <= args.l1d <= 4096:
        raise TfpersistError(f"--l1d {args.l1d}: give the L1 data cache in KiB, e.g. 32 or 48")
    repo = Path(args.repo).resolve()
    expected = ledger.agreed(ledger.read(repo / ledger.PATH))
    l1d = cpucache.this_cpu()[0]
    where = f"{runtime.cpu_model()} (L1D {l1d // 1024 if l1d else '?'} KiB)"
    told = f", Eigen told L1D {args.l1d} KiB" if args.l1d else ""
    print(f"check-repro: training the wide probe on {where}{told}", flush=True)
    from tfpersist.pipeline import probe  # TensorFlow from here on

    result = probe.run(args.l1d)
    measured = {f"{a}_{k}": v for a, d in result.items() if a != "control" for k, v in d.items()}
    if not expected:
        print(f"check-repro: {ledger.PATH} holds no hashes to compare with; this machine's:")
    bad = 0
    for column, value in measured.items():
        want = expected.get(column)
        status = "same" if value == want else ("new" if want is None else "DIFFERS")
        bad += status != "same"
        shown = value[:16] if want in (None, value) else f"{value[:16]} (ledger {want[:16]})"
        print(f"  {column:<18}  {status}: {shown}")
    if args.l1d:  # what uncut contractions give under the simulation: it took hold
        print(f"  control (uncut K = 784, 1024 matmuls): {result['control']['plain_sha256'][:16]}")
    if bad:
        print(f"check-repro: FAILED: {bad} of {len(measured)} probe hashes are not the ledger's")
        return 1
    print(f"check-repro: OK: the probe's bytes are the ledger's ({len(measured)} hashes)")
    return 0


def cmd_check_repro(args) -> int:
    from tfpersist import atomic, runtime
    from tfpersist.versions import reproducibility

    if args.probe:
        return cmd_probe(args)
    if args.l1d is not None:
        from tfpersist.errors import TfpersistError

        raise TfpersistError("--l1d goes with --probe (it simulates a CPU's cache for the probe)")

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
        if c.note:
            print(f"  {'':<{width}}  warning: {c.note}")
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
                        "note": c.note,
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
