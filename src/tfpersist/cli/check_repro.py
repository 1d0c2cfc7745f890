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
        metavar="KIB[,KIB...]",
        help="with --probe: train it as a CPU with this L1 data cache (KiB) would; several "
        "(32,48,64): one after the other in this process",
    )
    p.set_defaults(func=cmd_check_repro)


def _sizes(text: str) -> list[int]:
    """``--l1d 32`` or ``--l1d 32,48,64``: L1 data cache sizes in KiB."""
    from tfpersist.core.errors import TfpersistError

    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        sizes = []
    if not sizes or not all(1 <= s <= 4096 for s in sizes):
        raise TfpersistError(
            f"--l1d {text}: give L1 data cache sizes in KiB, e.g. 32 or 32,48,64"
        ) from None
    return sizes


def cmd_probe(args) -> int:
    from tfpersist.numerics import cpucache, runtime
    from tfpersist.versions import ledger

    sizes = _sizes(args.l1d) if args.l1d is not None else [None]
    repo = Path(args.repo).resolve()
    expected = ledger.agreed(ledger.read(repo / ledger.PATH))
    l1d = cpucache.this_cpu()[0]
    where = f"{runtime.cpu_model()} (L1D {l1d // 1024 if l1d else '?'} KiB)"
    told = ", ".join(str(s) for s in sizes if s)
    told = f", Eigen told L1D {told} KiB" + (" in turn" if len(sizes) > 1 else "") if told else ""
    print(f"check-repro: training the wide probe on {where}{told}", flush=True)
    from tfpersist.pipeline import probe  # TensorFlow from here on

    if not expected:
        print(f"check-repro: {ledger.PATH} holds no hashes to compare with; this machine's:")
    bad = total = 0
    for i, size in enumerate(sizes):
        result = probe.run(size, fresh=i == 0)
        indent = "    " if len(sizes) > 1 else "  "
        if len(sizes) > 1:
            print(f"  L1D {size} KiB:")
        measured = {
            f"{a}_{k}": v for a, d in result.items() if a != "control" for k, v in d.items()
        }
        for column, value in measured.items():
            want = expected.get(column)
            status = "same" if value == want else ("new" if want is None else "DIFFERS")
            bad += status != "same"
            total += 1
            shown = value[:16] if want in (None, value) else f"{value[:16]} (ledger {want[:16]})"
            print(f"{indent}{column:<18}  {status}: {shown}")
        if size:  # what uncut contractions give under the simulation: it took hold
            control = result["control"]["plain_sha256"][:16]
            print(f"{indent}control (uncut K = 784, 1024 matmuls): {control}")
    if bad:
        print(f"check-repro: FAILED: {bad} of {total} probe hashes are not the ledger's")
        return 1
    print(f"check-repro: OK: the probe's bytes are the ledger's ({total} hashes)")
    return 0


def cmd_check_repro(args) -> int:
    from tfpersist.core import atomic
    from tfpersist.numerics import runtime
    from tfpersist.versions import reproducibility

    if args.probe:
        return cmd_probe(args)
    if args.l1d is not None:
        from tfpersist.core.errors import TfpersistError

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
