"""`make bench`: tfpersist against its peers, as ratios measured in the same run.

Each figure is a ratio against a peer run in this invocation, the two interleaved (A, B,
A, B, …) and summarised by medians so that machine noise cancels; absolute numbers are for
context. Prints a table and writes bench/results.md. No timed assertions anywhere else.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORK = [sys.executable, str(ROOT / "bench" / "workloads.py")]
RUN = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "r = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(time.perf_counter() - t, peak, r.returncode)\n"
    "sys.stdout.write(r.stdout.decode()[-2000:]); sys.stderr.write(r.stderr.decode()[-20000:])\n"
)


def env(pin: str | dict | None = None) -> dict:
    """This environment, without any oneDNN settings of its own, plus ``pin``'s (runtime.py;
    a dict: those variables)."""
    from tfpersist.numerics import runtime

    e = {k: v for k, v in os.environ.items() if k not in runtime.settings(runtime.DEFAULT)}
    e.update(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", TF_CPP_MIN_LOG_LEVEL="2")
    e.update(runtime.settings(pin) if isinstance(pin, str) else pin or {})
    return e


def timed(
    cmd: list[str], cwd: Path = ROOT, pin: str | dict | None = None
) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout) of one command in a fresh process, with oneDNN
    capped at ``pin`` (None: the CPU's best)."""
    out = subprocess.run(
        [sys.executable, "-c", RUN, *cmd], cwd=cwd, env=env(pin), capture_output=True, text=True
    )
    first, *rest = out.stdout.splitlines() or ["nan 0 1"]
    seconds, rss_kib, code = first.split()
    if code != "0":
        said = "\n".join(line for line in out.stderr.splitlines() if not _noise(line))
        raise SystemExit(f"bench: {' '.join(cmd)} failed (exit {code}):\n{said[-2000:]}")
    return float(seconds), int(rss_kib) / 1024, "\n".join(rest)


def interleave(cmds: dict[str, list[str]], repeats: int, cwd: Path = ROOT) -> dict[str, list]:
    runs = {name: [] for name in cmds}
    for _ in range(repeats):
        for name, cmd in cmds.items():
            runs[name].append(timed(cmd, cwd))
    return runs


def median(values) -> float:
    return statistics.median(values)


ROWS: list[tuple[str, str, str, str, str]] = []  # what, ours, peer, ratio, target/verdict


def row(what: str, ours: str, peer: str, value: float, target: str, ratio: bool = True) -> None:
    """Record a figure; ``target`` reads like "≤ 0.60×" or "≥ 1.0×" and decides met/MISSED."""
    op, limit = target.split()[0], float(re.match(r"[\d.]+", target.split()[1]).group())
    ok = value <= limit if op == "≤" else value >= limit
    shown = f"{value:.2f}×" if ratio else ""
    ROWS.append((what, ours, peer, shown, f"{target} {'met' if ok else 'MISSED'}"))
    print(f"  {what}: {ours} vs {peer} → {shown} ({ROWS[-1][4]})", flush=True)


# What a process holds before any model: TensorFlow imported (the peer); tfpersist's freezing
# code with TensorFlow's C library loaded, not its Python layer (capi.py; its registry read
# from the library, not from the copy kept on disk, which spares the load).
FLOORS = {
    "peer": "import tensorflow",
    "ours": "import os; os.environ['TFPERSIST_CACHE'] = 'off'; "
    "from tfpersist import cli; from tfpersist.tfapi import capi; "
    "from tfpersist.freezing import freeze; "
    "capi.op_def('MatMul')",
}


def bench_freeze(tmp: Path, repeats: int) -> None:
    floors = {
        k: median([timed([sys.executable, "-c", code])[1] for _ in range(repeats)])
        for k, code in FLOORS.items()
    }
    print(
        f"  floors: {floors['peer']:.0f} MiB (import tensorflow), "
        f"{floors['ours']:.0f} MiB (TensorFlow's C library alone)",
        flush=True,
    )
    for millions in ("1", "67"):
        ckpt = tmp / f"ckpt{millions}"
        ckpt.mkdir()
        info = json.loads(
            timed([*WORK, "make-checkpoint", str(ckpt), millions])[2].splitlines()[-1]
        )
        model_mib = info["parameters"] * 4 / 2**20
        meta = ckpt / "model.ckpt.meta"
        freeze = [str(BIN / "tfpersist"), "freeze", str(ckpt), "--output-nodes", "out", "--out"]
        runs = interleave(
            {
                "ours": [*freeze, str(tmp / "ours.pb")],
                "no-card": [*freeze, str(tmp / "ours-no-card.pb"), "--no-card"],
                "peer": [
                    sys.executable,
                    "-m",
                    "tensorflow.python.tools.freeze_graph",
                    "--input_meta_graph",
                    str(meta),
                    "--input_checkpoint",
                    str(ckpt / "model.ckpt"),
                    "--input_binary",
                    "--output_node_names",
                    "out",
                    "--output_graph",
                    str(tmp / "peer.pb"),
                ],
            },
            repeats,
        )
        t_ours, t_peer = (median(r[0] for r in runs[k]) for k in ("ours", "peer"))
        m_ours, m_peer = (median(r[1] for r in runs[k]) for k in ("ours", "peer"))
        size = f"{info['parameters'] / 1e6:.0f}M params ({model_mib:.0f} MiB)"
        row(
            f"freeze wall time (CLI default, card included), {size}",
            f"{t_ours:.2f} s",
            f"freeze_graph {t_peer:.2f} s",
            t_ours / t_peer,
            "≤ 0.15×",
        )
        row(
            f"freeze wall time, --no-card (TensorFlow's C library not loaded), {size}",
            f"{median(r[0] for r in runs['no-card']):.2f} s",
            f"freeze_graph {t_peer:.2f} s",
            median(r[0] for r in runs["no-card"]) / t_peer,
            "≤ 0.15×",
        )
        above = m_ours - floors["ours"]
        row(
            f"freeze peak RSS above its process floor, {size}",
            f"{above:.0f} MiB (peak {m_ours:.0f} MiB)",
            f"model {model_mib:.0f} MiB (freeze_graph: {m_peer - floors['peer']:.0f} MiB "
            f"above import tensorflow, peak {m_peer:.0f} MiB)",
            above / model_mib,
            "≤ 1.5× model bytes",
        )
        bench_inspect(ckpt, tmp / "ours.pb", size, repeats)
        shutil.rmtree(ckpt)


def bench_inspect(ckpt: Path, frozen: Path, size: str, repeats: int) -> None:
    """inspect reads protos and the checkpoint's index without TensorFlow (protos.py,
    formats/bundles.py): against the bare `import tensorflow` it no longer pays for."""
    tfpersist = str(BIN / "tfpersist")
    runs = interleave(
        {
            "checkpoint": [tfpersist, "inspect", str(ckpt)],
            "frozen": [tfpersist, "inspect", str(frozen)],
            "peer": [sys.executable, "-c", "import tensorflow"],
        },
        repeats,
    )
    peer = median(r[0] for r in runs["peer"])
    for key, what in (("checkpoint", "the checkpoint (.meta + .index)"), ("frozen", "the .pb")):
        ours = median(r[0] for r in runs[key])
        row(
            f"inspect {what}, {size}",
            f"{ours:.2f} s",
            f"import tensorflow {peer:.2f} s",
            ours / peer,
            "≤ 0.25×",
        )


LABELS = {
    "mlp-wide": "mlp 2×1024 wide, batch 256, 16k rows × 784 (synthetic)",
    "mnist": "mlp 784→512→512, batch 256, 16k rows × 784 (synthetic)",
}


# The AVX2 cap alone, oneDNN's graph ops on (bench/results.md's candidate for a faster pin).
CAP_ONLY = {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "1"}


def bench_training(tmp: Path, repeats: int, epochs: int) -> None:
    """Our training loop under the pipeline's CPU pin, its contractions cut to train.max_k
    (the portable design), against Keras 3 ``fit`` as a user runs it (the CPU's best
    instruction set); what the cut costs (the same loop and pin, max_k 0) and what the pin
    costs (native: neither)."""
    from tfpersist.numerics import runtime

    def ours(arch: str, i: int, pin: str | None, epochs: int, max_k: str = "") -> dict:
        out = tmp / f"train-{arch}-{i}-{pin}-{max_k}"
        cmd = [*WORK, "train-ours", arch, str(epochs), str(out), *([max_k] if max_k else [])]
        return json.loads(timed(cmd, pin=pin)[2].splitlines()[-1])

    # mlp-wide and mnist (workloads.WIDE): GFLOPs a step, so the loop's per-step cost does
    # not dominate; fewer epochs of them take as long as the digits' 20.
    for arch, n in (
        ("mlp", epochs),
        ("cnn", epochs),
        ("mlp-wide", max(1, epochs // 5)),
        ("mnist", max(1, epochs // 5)),
    ):
        runs = {"pinned": [], "uncut": [], "onednn": [], "native": [], "keras": []}
        for i in range(repeats):
            runs["pinned"].append(ours(arch, i, runtime.DEFAULT, n))
            runs["uncut"].append(ours(arch, i, runtime.DEFAULT, n, "0"))
            try:  # oneDNN's Conv2D answers an empty row block with a wrong shape (TF 2.21)
                runs["onednn"].append(ours(arch, i, CAP_ONLY, n))
            except SystemExit:
                runs["onednn"].append({"examples_per_s": float("nan")})
            runs["native"].append(ours(arch, i, None, n))
            cmd = [*WORK, "train-keras", arch, str(n)]
            runs["keras"].append(json.loads(timed(cmd)[2].splitlines()[-1]))
        pinned, uncut, onednn, native, keras = (
            median(r["examples_per_s"] for r in runs[k])
            for k in ("pinned", "uncut", "onednn", "native", "keras")
        )
        label = LABELS.get(arch, arch)
        row(
            f"training throughput, {label} (pinned to {runtime.DEFAULT}, contractions cut to "
            "K ≤ 256; ours includes its validation pass and checkpoint)",
            f"{pinned:,.0f} ex/s",
            f"Keras 3 fit {keras:,.0f} ex/s",
            pinned / keras,
            "≥ 1.0×",
        )
        row(
            f"cost of the cut (portable bits on any L1D): {label}, max_k 256 / 0, both pinned",
            f"{pinned:,.0f} ex/s",
            f"uncut {uncut:,.0f} ex/s",
            pinned / uncut,
            "≥ 0.8×",
        )
        row(
            f"the candidate: {label}, cut, AVX2 cap with oneDNN's ops on (no evidence its bits "
            "travel: its blocking is not Eigen's), against Keras 3 fit",
            f"{onednn:,.0f} ex/s",
            f"Keras 3 fit {keras:,.0f} ex/s",
            onednn / keras,
            "≥ 0.0×",
        )
        row(
            f"CPU pin cost: training throughput, {label}, {runtime.DEFAULT} (cut) / native",
            f"{pinned:,.0f} ex/s",
            f"native {native:,.0f} ex/s",
            pinned / native,
            "≥ 0.7×",
        )


def bench_ledger(tmp: Path, l1d: str = "") -> None:
    """This machine's row of bench/ledger.csv: its CPU and caches, the wide probe's hashes
    (pipeline/probe.py, what ``check-repro --probe`` checks) and those of the pipeline's wide
    experiment (model.mlp.hidden [1024, 1024] at the real params). A row whose hashes differ
    from the others' is the finding the ledger exists for: it is appended all the same.
    ``l1d`` (``--l1d KIB``): a row of this CPU with Eigen told that L1D (cpucache)."""
    from datetime import date

    from tfpersist.core.errors import TfpersistError
    from tfpersist.numerics import cpucache, runtime
    from tfpersist.versions import ledger

    probe = "import json; from tfpersist.pipeline import probe; print(json.dumps(probe.run()))"
    found = json.loads(
        timed([sys.executable, "-c", probe], pin=runtime.DEFAULT)[2].splitlines()[-1]
    )
    wide = json.loads(
        timed(
            [*WORK, "ledger-row", "mlp-wide", str(tmp / f"ledger-wide{l1d}"), l1d],
            pin=runtime.DEFAULT,
        )[2].splitlines()[-1]
    )
    own_l1d, l2, _ = cpucache.this_cpu()
    entry = {
        "date": date.today().isoformat(),
        "cpu": runtime.cpu_model(),
        "l1d_kib": own_l1d // 1024 if own_l1d else "",
        "l2_kib": l2 // 1024 if l2 else "",
        "simulated_l1d_kib": l1d,
        "tensorflow": _tf_version(),
        "pin": runtime.DEFAULT,
        **{f"{a}_{k}": v for a, d in found.items() if a != "control" for k, v in d.items()},
        **{f"wide_{k}": v for k, v in wide.items()},
    }
    ledger.append(entry, ROOT / ledger.PATH)
    try:
        ledger.agreed(ledger.read(ROOT / ledger.PATH), ledger.PROBE + ledger.WIDE)
        verdict, same = "the same as every row's", 1.0
    except TfpersistError as e:  # the ledger's point: say it, keep the row
        verdict, same = f"OTHER BITS: {e}", 0.0
    row(
        f"bench/ledger.csv row: {entry['cpu']}, L1D {entry['l1d_kib']} KiB"
        f"{f' (Eigen told {l1d} KiB)' if l1d else ''}: wide probe and wide experiment hashes",
        f"mlp {entry['mlp_train_sha256'][:10]}…, wide {entry['wide_train_sha256'][:10]}…",
        verdict,
        same,
        "≥ 1 (1: the same bits as every row)",
        ratio=False,
    )


def _noise(line: str) -> bool:
    """Lines a child's exit may print that say nothing of why it failed (dulwich's pack
    objects collected at interpreter shutdown)."""
    return (
        "dulwich" in line
        or "meta_path is None" in line
        or line.startswith(("Exception ignored in", "Traceback (most recent call last):"))
    )


PIN_ROWS: list[tuple[str, ...]] = []  # the pin section's own table (bench_pin)


def bench_pin(tmp: Path, repeats: int, epochs: int) -> None:
    """Where the CPU pin's time goes on this CPU: the pipeline's loop under the pin, under
    its two halves alone (oneDNN's instruction-set cap; TF_ENABLE_ONEDNN_OPTS=0, which keeps
    oneDNN's graph ops out) and with neither (native); each run's checkpoint bits compared
    with the pin's, and a step's time by op class (workloads.pin_profile)."""
    from tfpersist.numerics import runtime

    pin = runtime.settings(runtime.DEFAULT)
    cap = {runtime.ISA_VARIABLE: pin[runtime.ISA_VARIABLE]}
    candidates = {
        f"{runtime.DEFAULT} (the pin: cap {cap[runtime.ISA_VARIABLE]}, oneDNN ops off)": pin,
        f"cap {cap[runtime.ISA_VARIABLE]}, oneDNN ops on": {**cap, runtime.OPTS_VARIABLE: "1"},
        "no cap, oneDNN ops off": {runtime.OPTS_VARIABLE: "0"},
        "native (this CPU's defaults)": {},
    }

    def profile(arch: str, n: int, threads: int, settings: dict, i: int) -> dict:
        out = tmp / f"pin-{arch}-{threads}-{len(PIN_ROWS)}-{i}-{abs(hash(str(settings)))}"
        cmd = [*WORK, "pin-profile", arch, str(n), str(threads), str(out)]
        try:
            return json.loads(timed(cmd, pin=settings)[2].splitlines()[-1])
        except SystemExit as e:  # a setting TensorFlow fails under: its row says why
            lines = str(e).strip().splitlines()
            why = next((x for x in reversed(lines) if "Error" in x), lines[-1])
            return {"failed": why.split("Error: ")[-1][:200]}

    def add(arch: str, threads: int, name: str, runs: list[dict], base: dict, bits: str) -> None:
        speed = median(r["examples_per_s"] for r in runs)
        step_ms = median(r["step_ms"] for r in runs)
        ms = runs[0]["ms_per_step"]
        PIN_ROWS.append(
            (
                f"{LABELS.get(arch, arch)}, {threads} thread{'s' * (threads > 1)}",
                name,
                f"{speed:,.0f}",
                f"{speed / base['speed']:.2f}×",
                f"{step_ms:.2f}",
                f"{base['step_ms'] / step_ms:.2f}×",
                *(f"{ms.get(k, 0.0):.2f}" for k in ("matmul", "conv", "pool", "other", "adam")),
                bits,
            )
        )
        print(f"  {' | '.join(PIN_ROWS[-1])}", flush=True)

    for arch, n in (("mlp", epochs), ("cnn", epochs), ("mlp-wide", 1)):
        runs = {name: [] for name in candidates}
        for i in range(repeats):
            for name, settings in candidates.items():
                runs[name].append(profile(arch, n, 1, settings, i))
        pinned = runs[next(iter(candidates))]
        base = {
            "speed": median(r["examples_per_s"] for r in pinned),
            "step_ms": median(r["step_ms"] for r in pinned),
            "sha": pinned[0]["sha256"],
        }
        for name, rs in runs.items():
            failed = next((r["failed"] for r in rs if "failed" in r), None)
            if failed:
                row_ = (f"{LABELS.get(arch, arch)}, 1 thread", name, f"failed: {failed}")
                PIN_ROWS.append(row_ + ("",) * 9)
                print(f"  {' | '.join(PIN_ROWS[-1])}", flush=True)
                continue
            same = all(r["sha256"] == base["sha"] for r in rs)
            sha = rs[0]["sha256"][:12]
            add(arch, 1, name, rs, base, f"{'the pin' if same else 'other'}: {sha}")
        if arch == "mlp-wide":  # does the thread count decide the bits?
            for name, settings in candidates.items():
                if "failed" in runs[name][0]:
                    continue
                two = profile(arch, n, 2, settings, 0)
                same = two["sha256"] == runs[name][0]["sha256"]
                bits = f"{'= 1 thread' if same else 'other than 1 thread'}: {two['sha256'][:12]}"
                add(arch, 2, name, [two], base, bits)


def bench_workers(tmp: Path, repeats: int, epochs: int) -> None:
    """Steps/s on 2 worker processes against 1 (TF's multi-worker runtime on 127.0.0.1, the
    same bytes), and what a step sends: each worker gathers the K micro-batches' gradients
    (K·P floats) where a ring all-reduce of partial sums would move 2·(N−1)/N·P."""
    from tfpersist.pipeline.params import TrainParams

    k = TrainParams.__dataclass_fields__["micro_batches"].default
    for arch, n in (("mlp", epochs), ("mlp-wide", max(1, epochs // 10))):
        runs = {1: [], 2: []}
        for i in range(repeats):
            for workers in (1, 2):
                out = tmp / f"workers-{arch}-{workers}-{i}"
                cmd = [*WORK, "train-workers", arch, str(n), str(workers), str(out)]
                runs[workers].append(json.loads(timed(cmd, pin="avx2")[2].splitlines()[-1]))
        one, two = (median(r["steps_per_s"] for r in runs[w]) for w in (1, 2))
        parameters = runs[1][0]["parameters"]
        gathered = (k - k // 2) * parameters * 4  # what one of 2 workers receives per step
        ring = 2 * (2 - 1) / 2 * parameters * 4
        row(
            f"training on 2 worker processes, {LABELS.get(arch, arch)} (2 cores here: "
            f"correctness, not speed; {gathered / 2**20:.2f} MiB gathered per worker and step, "
            f"a ring all-reduce would move {ring / 2**20:.2f} MiB)",
            f"2 workers {two:,.1f} steps/s",
            f"1 process {one:,.1f} steps/s",
            two / one,
            "≥ 0.0×",
        )


SCALE_SIZES = {"10k": 10_000, "1M": 1_000_000, "10M": 10_000_000}


def bench_scale(tmp: Path, quick: bool, repeats: int) -> None:
    """Rows/s of training at 10k, 1M and 10M rows × 64 features (one epoch; at 10k as many
    epochs as one 1M epoch has rows; the sizes interleaved, medians of ``repeats``) and the
    peak memory of prepare and train, each a fresh process; then the two-host training of
    tests/hosts.py beside one host's (namespaces)."""
    sizes = {"10k": 10_000, "1M": 1_000_000} if quick else SCALE_SIZES
    runs, peaks = {label: [] for label in sizes}, {}
    for label, n in sizes.items():
        csv, prepared = tmp / f"scale-{label}.csv", tmp / f"scale-{label}"
        timed([*WORK, "scale-csv", str(csv), str(n)])
        seconds, rss, _ = timed([*WORK, "scale-prepare", str(csv), str(prepared)], pin="avx2")
        peaks[label] = [rss, 0.0, seconds, csv.stat().st_size / 1e6]
        csv.unlink()
        print(f"  {label} rows: prepare {seconds:.0f} s, peak {rss:.0f} MiB", flush=True)
    cover = str(int(0.7 * SIZES_EPOCH_ROWS))
    for i in range(repeats):
        for label in sizes:
            out = tmp / f"scale-train-{label}-{i}"
            _, train_rss, said = timed(
                [*WORK, "scale-train", str(tmp / f"scale-{label}"), str(out), cover], pin="avx2"
            )
            runs[label].append(json.loads(said.splitlines()[-1])["rows_per_s"])
            peaks[label][1] = max(peaks[label][1], train_rss)
            shutil.rmtree(out)
            print(f"  {label} rows: train {runs[label][-1]:,.0f} rows/s, peak {train_rss:.0f} MiB")
    for label in sizes:
        shutil.rmtree(tmp / f"scale-{label}")
    rates = {label: {"rows_per_s": median(r)} for label, r in runs.items()}
    big = list(sizes)[-1]
    row(
        f"training rows/s at {big} rows against 10k rows (64 features, batches of 256; the "
        f"batch order a keyed bijection, rows read per batch)",
        f"{big}: {rates[big]['rows_per_s']:,.0f} rows/s",
        f"10k: {rates['10k']['rows_per_s']:,.0f} rows/s",
        rates[big]["rows_per_s"] / rates["10k"]["rows_per_s"],
        "≥ 0.8×",
    )
    for label in sizes:
        if label == "10k":
            continue
        prep, train_rss, seconds, csv_mb = peaks[label]  # train: the largest of the repeats
        row(
            f"peak memory at {label} rows (a {csv_mb:,.0f} MB CSV): prepare ({seconds:.0f} s) "
            "and train, MiB",
            f"prepare {prep:,.0f}, train {train_rss:,.0f}",
            "1 GiB",
            max(prep, train_rss) / 1024,
            "≤ 1.0×",
        )
    sys.path.insert(0, str(ROOT / "tests"))
    import hosts

    if hosts.unavailable():
        print(f"  hosts: skipped: {hosts.unavailable()}")
        return
    one, two = hosts.timing(tmp / "hosts")
    row(
        "training at the repository's params on 2 hosts (network namespaces, the same bytes) "
        "against 1 host, wall seconds (2 cores here: correctness, not speed)",
        f"2 hosts {two:.0f} s",
        f"1 host {one:.0f} s",
        two / one,
        "≤ 10.0×",
    )


SIZES_EPOCH_ROWS = 1_000_000  # the 10k-row run trains as many rows as one 1M-row epoch


def bench_inference(tmp: Path, repeats: int) -> None:
    optimized = tmp / "optimized.pb"
    subprocess.run(
        [
            str(BIN / "tfpersist"),
            "freeze",
            "models/checkpoint",
            "--output-nodes",
            "predictions,probabilities",
            "--optimize",
            "--out",
            str(optimized),
            "--no-card",
        ],
        cwd=ROOT,
        env=env(),
        check=True,
        capture_output=True,
    )
    result = json.loads(
        timed(
            [
                *WORK,
                "inference",
                "models/frozen/model.pb",
                str(optimized),
                "models/checkpoint",
                str(repeats),
            ]
        )[2].splitlines()[-1]
    )
    for label, r in result.items():
        rows = "test split (269 rows)" if label == "test" else "10k-row batch"
        peer = f"checkpoint session {r['checkpoint']:,.0f} rows/s"
        for kind, name, target in (
            ("frozen", "", "≥ 1.0×"),
            ("optimized", " --optimize", "≥ 1.1×"),
        ):
            row(
                f"frozen{name} inference, {rows}",
                f"{r[kind]:,.0f} rows/s",
                peer,
                r[kind] / r["checkpoint"],
                target,
            )


def bench_dvc(tmp: Path, repeats: int) -> None:
    repo = tmp / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    start = time.perf_counter()
    subprocess.run(
        [str(BIN / "dvc"), "repro", "-q"], cwd=repo, env=env(), check=True, capture_output=True
    )
    scratch = time.perf_counter() - start
    runs = interleave(
        {"repro": [str(BIN / "dvc"), "repro"], "status": [str(BIN / "dvc"), "status"]},
        repeats,
        repo,
    )
    t_repro, t_status = (median(r[0] for r in runs[k]) for k in ("repro", "status"))
    row(
        "no-op dvc repro",
        f"{t_repro:.2f} s",
        f"dvc status {t_status:.2f} s",
        t_repro / t_status,
        "≤ 1.5×",
    )
    row("full default pipeline from scratch", f"{scratch:.1f} s", "—", scratch, "≤ 60 s", False)


# results.md: what follows this line (notes on runs of single sections) survives a full run.
KEPT = "<!-- Above: written by `make bench`. Below: notes, kept by it. -->\n"


QUICK = "`make bench-quick` (one repeat, short runs, no peer installed) last took "


def note_quick(seconds: float) -> None:
    """The quick run's time, kept in results.md's notes (the Makefile's help quotes it)."""
    from tfpersist.numerics import runtime

    results = ROOT / "bench" / "results.md"
    text = results.read_text() if results.exists() else KEPT
    if KEPT not in text:
        text += f"\n{KEPT}"
    head, _, notes = text.partition(KEPT)
    notes = "".join(line for line in notes.splitlines(True) if not line.startswith(QUICK))
    line = f"{QUICK}{seconds:.0f} s ({os.cpu_count()} cores, {runtime.cpu_model()}).\n"
    results.write_text(f"{head}{KEPT}{line}{notes}")


def write_results(seconds: float) -> str:
    from tfpersist.numerics import runtime

    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench`: each ratio is tfpersist / peer, both measured in the same run,",
        "interleaved, medians. Absolute figures are for context only.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {runtime.cpu_model()}; "
        f"Python {platform.python_version()}, TensorFlow {_tf_version()}. "
        f"Run took {seconds:.0f} s.",
        "",
        "| what | tfpersist | peer | ratio | target |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in ROWS),
        "",
    ]
    if PIN_ROWS:
        lines += [
            "## Where the CPU pin's time goes (`--only pin`)",
            "",
            "The pipeline's training loop (`train()`: its validation pass, checkpoint and first",
            "step included) under each oneDNN setting, and the checkpoint's bits against the",
            "pin's (at 2 threads: against the same setting at 1) with its sha256 — this table",
            "from another CPU tells which settings give the same bits there; then in one",
            "session the same training graph's steady step (mean of 20 after the first), and a",
            "step's time by op class (ms) from TensorFlow's trace of 5 steps.",
            "",
            "| model | oneDNN | loop ex/s | × the pin | step ms | × the pin | matmul | conv |"
            " pool | other | adam | bits |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
            *(f"| {' | '.join(r)} |" for r in PIN_ROWS),
            "",
        ]
    return "\n".join(lines)


def _tf_version() -> str:
    from importlib.metadata import version

    return version("tensorflow-cpu")


SECTIONS = (
    "serving",
    "freeze",
    "training",
    "pin",
    "workers",
    "scale",
    "inference",
    "dvc",
    "ledger",
)


def main() -> None:
    """``--quick`` (``make bench-quick``): one repeat, short runs, no peer installed (MLflow's
    server skipped), bench/results.md left as it is; ``--only freeze,serving``: those sections
    (the table printed, bench/results.md left as it is); ``--serving``: ``--only serving``."""
    quick = "--quick" in sys.argv
    only = "serving" if "--serving" in sys.argv else None
    if "--only" in sys.argv:
        only = sys.argv[sys.argv.index("--only") + 1]
    wanted = only.split(",") if only else list(SECTIONS)
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        raise SystemExit(f"bench: no section {', '.join(sorted(unknown))} ({', '.join(SECTIONS)})")
    l1d = sys.argv[sys.argv.index("--l1d") + 1] if "--l1d" in sys.argv else ""
    repeats = 1 if quick else 3
    epochs = 5 if quick else 20
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tfpersist-bench-") as tmp:
        tmp = Path(tmp)
        sys.path.insert(0, str(ROOT / "bench"))
        from serving import bench_serving

        run = {
            "serving": lambda: bench_serving(ROOT, tmp, repeats, row, median, env, peer=not quick),
            "freeze": lambda: bench_freeze(tmp, repeats),
            "training": lambda: bench_training(tmp, repeats, epochs),
            "pin": lambda: bench_pin(tmp, max(1, repeats - 1), epochs // 2),
            "workers": lambda: bench_workers(tmp, repeats, epochs),
            "scale": lambda: bench_scale(tmp, quick, repeats),
            "inference": lambda: bench_inference(tmp, 3 if quick else 7),
            "dvc": lambda: bench_dvc(tmp, repeats),
            "ledger": lambda: bench_ledger(tmp, l1d),
        }
        for name in SECTIONS:
            if name in wanted:
                print(f"{name}:", flush=True)
                run[name]()
    text = write_results(time.perf_counter() - start)
    if quick and not only:
        note_quick(time.perf_counter() - start)
    if not quick and not only:
        results = ROOT / "bench" / "results.md"
        kept = results.read_text().partition(KEPT)[2] if results.exists() else ""
        results.write_text(f"{text}\n{KEPT}{kept}" if kept else text)
    print(text)


if __name__ == "__main__":
    main()
