"""The ops a pure inference graph may run (everything else is refused before anything runs),
read once from ``allowlists/ops.toml``: its groups, one per ``gen_*_ops`` module of
TensorFlow 2.21 with why its ops are safe, and the ops of those modules left out (``EXCLUDED``:
they touch files or other processes). tests/safety/test_safety.py holds every name to a
registered op. No TensorFlow here.
"""

from __future__ import annotations

import tomllib
from importlib import resources

_DATA = tomllib.loads(resources.files(__package__).joinpath("allowlists/ops.toml").read_text())

GROUPS: dict[str, frozenset[str]] = {
    name: frozenset(group["ops"]) for name, group in _DATA["allowed"].items()
}
ALLOWED = frozenset().union(*GROUPS.values())
EXCLUDED = frozenset(_DATA["excluded"]["ops"])
