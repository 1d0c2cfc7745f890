"""Keras 3.15's built-in objects a model config may name — (module → class names) and
(module → function names) — read once from ``allowlists/keras.toml``: what
``keras_files.check_config`` lets Keras rebuild. tests/safety/test_safety.py holds every entry to
the installed Keras and ``APPLICATION_LAYERS`` to exactly the Layer classes Keras's own
applications define. Keras 2 configs name no module: there the class name alone is looked up.
"""

from __future__ import annotations

import tomllib
from importlib import resources

_DATA = tomllib.loads(resources.files(__package__).joinpath("allowlists/keras.toml").read_text())


def _sets(table: dict) -> dict[str, frozenset[str]]:
    return {module: frozenset(names) for module, names in table.items()}


APPLICATION_LAYERS = _sets(_DATA["application_layers"])
CLASSES = {**_sets(_DATA["classes"]), **APPLICATION_LAYERS}
FUNCTIONS = _sets(_DATA["functions"])
