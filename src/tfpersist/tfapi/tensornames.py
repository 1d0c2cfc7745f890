"""The names in a GraphDef's node inputs and in fetches: ``op``, ``op:1`` (the op's second
output) and ``^op`` (a control input). No TensorFlow."""

from __future__ import annotations


def op_name(name: str) -> str:
    """The op a name refers to: ``^scope/op:1`` → ``scope/op``."""
    return name.lstrip("^").partition(":")[0]


def port(name: str) -> int:
    """Which output of its op a tensor name means: ``op:1`` → 1, ``op`` and ``^op`` → 0."""
    return int(name.partition(":")[2] or 0)


def is_control(name: str) -> bool:
    """``^op``: an ordering dependency, no data."""
    return name.startswith("^")
