"""Promotion gates: a candidate's metrics held to absolute thresholds and to the version now in
the stage, as MLflow's ``validate_evaluation_results`` does (``threshold``,
``min_absolute_change``, ``min_relative_change``, ``greater_is_better``), written as one
inequality each:

    accuracy>=0.95               an absolute threshold
    accuracy>=baseline           no worse than the version in the stage
    accuracy>=baseline-0.005     at most 0.005 worse (an absolute change)
    log_loss<=baseline*1.02      at most 2 % worse (a relative change)

A metric is a key of the version's DVC metrics (``dvc metrics show``), nested keys joined with
dots (``recall.3``, ``export.onnx.accuracy``). No TensorFlow, no DVC.
"""

from __future__ import annotations

import math
import operator
import re
from dataclasses import dataclass

from tfpersist.core.errors import UsageError

_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_GATE = re.compile(
    rf"^\s*(?P<metric>[^<>=\s]+)\s*(?P<op>>=|<=|>|<)\s*"
    rf"(?:(?P<number>{_NUMBER})|baseline(?:\s*(?P<arith>[-+*])\s*(?P<by>{_NUMBER}))?)\s*$"
)
FORM = "METRIC>=NUMBER, METRIC>=baseline, METRIC>=baseline-0.01 or METRIC<=baseline*1.02"


@dataclass(frozen=True)
class Gate:
    text: str
    metric: str
    op: str
    number: float | None  # an absolute threshold, or None: relative to the baseline
    arith: str | None = None  # "+", "-" or "*" applied to the baseline
    by: float = 0.0

    @property
    def needs_baseline(self) -> bool:
        return self.number is None

    def bound(self, baseline: float | None) -> float | None:
        if self.number is not None:
            return self.number
        if baseline is None:
            return None
        return {None: baseline, "+": baseline + self.by, "-": baseline - self.by}.get(
            self.arith, baseline * self.by
        )


@dataclass(frozen=True)
class Outcome:
    gate: Gate
    value: float | None
    bound: float | None
    passed: bool | None  # None: not checked (no version in the stage to compare with)

    def line(self) -> str:
        g = self.gate
        if self.value is None:
            return f"FAIL  {g.text}: the candidate has no metric '{g.metric}'"
        if self.passed is None:
            return f"skip  {g.text}: no version in the stage to compare with"
        if self.bound is None:
            return f"FAIL  {g.text}: the version in the stage has no metric '{g.metric}'"
        verdict = "pass" if self.passed else "FAIL"
        return f"{verdict}  {g.text}: {self.value:g} {g.op} {self.bound:g}"

    def why(self) -> str:
        """A failed gate, for the refusal's one line."""
        g = self.gate
        if self.value is None or self.bound is None:
            return self.line().removeprefix("FAIL  ")
        return f"{g.text} fails: {self.value:g} is not {g.op} {self.bound:g}"


def parse(text: str) -> Gate:
    m = _GATE.match(text)
    if m is None:
        raise UsageError(f"--gate '{text}': write it as {FORM}")
    number = float(m["number"]) if m["number"] is not None else None
    return Gate(text.strip(), m["metric"], m["op"], number, m["arith"], float(m["by"] or 0.0))


def flatten(metrics: dict, prefix: str = "") -> dict[str, float]:
    """{"recall": {"3": 0.9}} → {"recall.3": 0.9}; numbers only (strings such as "1e-06" too)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
            continue
        if isinstance(value, bool):
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            flat[name] = number
    return flat


def check(
    gates: list[Gate], candidate: dict[str, float], baseline: dict[str, float] | None
) -> list[Outcome]:
    """Each gate on the candidate's metrics; relative gates against ``baseline`` (the version
    in the stage), skipped when there is none. A baseline missing the metric fails the gate."""
    outcomes = []
    for gate in gates:
        value = candidate.get(gate.metric)
        if value is None:
            outcomes.append(Outcome(gate, None, None, False))
            continue
        if gate.needs_baseline and baseline is None:
            outcomes.append(Outcome(gate, value, None, None))
            continue
        bound = gate.bound(baseline.get(gate.metric) if baseline is not None else None)
        if bound is None:
            outcomes.append(Outcome(gate, value, None, False))
            continue
        outcomes.append(Outcome(gate, value, bound, _OPS[gate.op](value, bound)))
    return outcomes
