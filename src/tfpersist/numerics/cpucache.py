"""The CPU cache sizes TensorFlow's Eigen kernels block by — read from this CPU, or set to
another CPU's in this process, to prove that bits do not depend on them.

Eigen keeps the L1/L2/L3 sizes it reads from ``cpuid`` in a function-local static,
``Eigen::internal::manage_caching_sizes(…)::m_cacheSizes`` (three int64), filled on first use
behind a guard. TensorFlow's wheel carries its own copies in ``libtensorflow_cc.so.2`` and
``libtensorflow_framework.so.2`` (symbols ``nm`` lists). ``simulate`` writes the sizes into
every copy and sets each guard, so that Eigen never asks ``cpuid`` and blocks its contractions
as a CPU with those caches would. It must run after TensorFlow's library is loaded and before
any op runs (running an op first starts the thread pools and fills the statics).

This is a proving tool (tests, ``make bench``'s ledger, ``check-repro --l1d``): it writes into
a loaded library's memory. Nothing in the pipeline itself changes cache sizes.
"""

from __future__ import annotations

import ctypes
import functools
import os
from dataclasses import dataclass
from pathlib import Path

from tfpersist.core.errors import TfpersistError

SIZES = "_ZZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes"
GUARD = "_ZGVZN5Eigen8internal20manage_caching_sizesENS_6ActionEPlS2_S2_E12m_cacheSizes"
LIBRARIES = ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2")

# Real CPUs' per-core data caches (L1D, L2; L3 per CCX/socket share), bytes.
KIB = 1024
CPUS = {
    "zen4": (32 * KIB, 1024 * KIB, 32 * 1024 * KIB),  # AMD Zen 2/3/4, Intel Skylake: 32 KiB
    "icelake": (48 * KIB, 1280 * KIB, 48 * 1024 * KIB),  # Intel Ice Lake+, AMD Zen 5: 48 KiB
    "l1d64": (64 * KIB, 2048 * KIB, 64 * 1024 * KIB),  # a 64 KiB L1D (Apple-class; headroom)
}


@dataclass(frozen=True)
class Site:
    library: Path
    sizes: int  # addresses in this process
    guard: int


_SYMBOL = [  # an ELF64 symbol table entry
    ("st_name", "<u4"),
    ("st_info", "u1"),
    ("st_other", "u1"),
    ("st_shndx", "<u2"),
    ("st_value", "<u8"),
    ("st_size", "<u8"),
]


@functools.cache
def _symbols(path: Path) -> tuple[int, int]:
    """The values (addresses relative to the load base) of the two symbols. The library's
    symbol table has about a million entries and its string table 175 MB: the names are
    found in the string table, then their entries with numpy (0.5 s; pyelftools' own walk
    of the symbols takes about a minute)."""
    import numpy as np
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as f:
        elf = ELFFile(f)
        table = elf.get_section_by_name(".symtab")
        if table is None or table["sh_entsize"] != 24:
            raise TfpersistError(
                f"{path.name} has no symbol table: cannot find Eigen's cache sizes"
            )
        names = elf.get_section(table["sh_link"])
        f.seek(names["sh_offset"])
        strings = f.read(names["sh_size"])
        f.seek(table["sh_offset"])
        entries = np.frombuffer(f.read(table["sh_size"]), dtype=np.dtype(_SYMBOL))
    found = []
    for name in (SIZES, GUARD):
        at = strings.find(b"\0" + name.encode() + b"\0")
        hits = np.nonzero(entries["st_name"] == at + 1)[0] if at >= 0 else []
        if len(hits) == 0:
            raise TfpersistError(f"{path.name} does not hold Eigen's cache-size static")
        found.append(int(entries["st_value"][hits[0]]))
    return found[0], found[1]


def _load_base(path: Path) -> int:
    """Where ``path`` is mapped in this process (its mapping at file offset 0)."""
    real = os.path.realpath(path)
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 6 and os.path.realpath(fields[5]) == real and int(fields[2], 16) == 0:
            return int(fields[0].split("-")[0], 16)
    raise TfpersistError(f"{path.name} is not loaded in this process (import TensorFlow first)")


def sites() -> list[Site]:
    """Each loaded copy of Eigen's cache-size static in TensorFlow's libraries."""
    import importlib.util

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.origin:
        raise TfpersistError("TensorFlow is not installed")
    root = Path(spec.origin).parent
    found = []
    for name in LIBRARIES:
        path = root / name
        if path.exists():
            sizes, guard = _symbols(path)
            base = _load_base(path)
            found.append(Site(path, base + sizes, base + guard))
    if not found:
        raise TfpersistError("no TensorFlow library with Eigen's cache sizes is loaded")
    return found


def read() -> list[tuple[str, bool, tuple[int, int, int]]]:
    """Per library: whether Eigen has filled its static yet, and the (L1, L2, L3) it holds."""
    out = []
    for site in sites():
        sizes = (ctypes.c_int64 * 3).from_address(site.sizes)
        out.append(
            (site.library.name, bool(ctypes.c_uint8.from_address(site.guard).value), tuple(sizes))
        )
    return out


def simulate(l1: int, l2: int, l3: int) -> None:
    """Make Eigen in TensorFlow block as a CPU with these cache sizes (bytes) would."""
    for site in sites():
        sizes = (ctypes.c_int64 * 3).from_address(site.sizes)
        sizes[0], sizes[1], sizes[2] = l1, l2, l3
        ctypes.c_uint8.from_address(site.guard).value = 1


def this_cpu() -> tuple[int | None, int | None, int | None]:
    """This CPU's per-core L1 data, L2 and L3 sizes in bytes as Linux reports them (sysfs),
    None where it does not say."""
    found: dict[int, int] = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            level = int((index / "level").read_text())
            kind = (index / "type").read_text().strip()
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        if kind == "Instruction" or not size:
            continue
        unit = {"K": KIB, "M": KIB * KIB, "G": KIB**3}.get(size[-1], 1)
        found.setdefault(level, int(size.rstrip("KMG")) * unit)
    return found.get(1), found.get(2), found.get(3)
