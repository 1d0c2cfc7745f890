"""Promotion gates as MLflow's validate_evaluation_results reads its MetricThreshold:
an absolute threshold, a minimum absolute change and a minimum relative change against the
baseline, greater or lower is better — each written as one inequality."""

from __future__ import annotations

import pytest

from tfpersist.core.errors import UsageError
from tfpersist.versions import gates

BASELINE = {"accuracy": 0.90, "log_loss": 0.30}


def outcome(text, candidate, baseline=BASELINE):
    return gates.check([gates.parse(text)], candidate, baseline)[0]


@pytest.mark.parametrize(
    ("gate", "candidate", "passed"),
    [
        # MetricThreshold(threshold=0.85, greater_is_better=True)
        ("accuracy>=0.85", {"accuracy": 0.85}, True),
        ("accuracy>0.85", {"accuracy": 0.85}, False),
        # MetricThreshold(min_absolute_change=0.01): at least 0.01 better than the baseline
        ("accuracy>=baseline+0.01", {"accuracy": 0.915}, True),
        ("accuracy>=baseline+0.01", {"accuracy": 0.905}, False),
        # a tolerated regression: at most 0.005 worse
        ("accuracy>=baseline-0.005", {"accuracy": 0.896}, True),
        ("accuracy>=baseline-0.005", {"accuracy": 0.894}, False),
        # MetricThreshold(min_relative_change=0.05, greater_is_better=False): 5 % lower loss
        ("log_loss<=baseline*0.95", {"log_loss": 0.28}, True),
        ("log_loss<=baseline*0.95", {"log_loss": 0.29}, False),
        ("log_loss < baseline", {"log_loss": 0.30}, False),
        ("recall.3>=0.8", {"recall.3": 0.9}, True),
    ],
)
def test_gates_decide_as_mlflow_thresholds(gate, candidate, passed):
    assert outcome(gate, candidate).passed is passed


def test_a_baseline_gate_is_skipped_without_a_version_in_the_stage_and_said():
    done = outcome("accuracy>=baseline", {"accuracy": 0.5}, None)
    assert done.passed is None
    assert done.line() == "skip  accuracy>=baseline: no version in the stage to compare with"


def test_a_missing_metric_fails_on_either_side():
    assert "the candidate has no metric 'f1'" in outcome("f1>=0.5", {}).why()
    missing = outcome("f1>=baseline", {"f1": 0.7})
    assert missing.passed is False
    assert "the version in the stage has no metric 'f1'" in missing.why()


@pytest.mark.parametrize("text", ["accuracy", "accuracy=>0.9", ">=0.9", "accuracy>=base", "a>=1e"])
def test_a_malformed_gate_is_a_usage_error_showing_the_forms(text):
    with pytest.raises(UsageError, match=r"write it as METRIC>=NUMBER"):
        gates.parse(text)


def test_metrics_flatten_to_dotted_numbers():
    flat = gates.flatten(
        {"accuracy": 0.9, "recall": {"3": 0.8}, "diff": "1e-06", "ok": True, "n": "x"}
    )
    assert flat == {"accuracy": 0.9, "recall.3": 0.8, "diff": 1e-06}
