"""evaluate: the frozen model on the test split → metrics and a confusion-matrix plot.

usage: python stages/evaluate.py FROZEN_PB SOURCE EXPORT_DIR PREPARED_DIR METRICS_JSON
                                 DETAILS_JSON CONFUSION_CSV
METRICS_JSON holds the headline (accuracy, log loss, the worst class's recall, rows: what
`dvc metrics show` prints); DETAILS_JSON the rest (per-class recall, the parity below).
The model is loaded from the .pb alone; its SOURCE (the release checkpoint, or the
Keras-fit variant's model.keras, run by Keras) is run on the same rows to
record how far the frozen outputs are from it (0, or float noise), and so is every format
the export stage shipped (its accuracy, its distance to the frozen model, its size). A
frozen graph with ops outside the inference allowlist (safety.py) is refused unless
TFPERSIST_ALLOW_OPS=A,B names them or TFPERSIST_ALLOW_UNSAFE_OPS=1.
"""

import os

from tfpersist import safety
from tfpersist.pipeline import evaluation
from tfpersist.pipeline.params import ExportParams, ModelParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    frozen_pb, checkpoint_dir, export_dir, prepared, metrics_path, details_path, confusion_path = (
        argv
    )
    params = load_params()
    model, export = ModelParams.from_params(params), ExportParams.from_params(params)
    trust = safety.Trust.from_env(os.environ)
    metrics = evaluation.evaluate(
        frozen_pb,
        checkpoint_dir,
        prepared,
        model,
        metrics_path,
        details_path,
        confusion_path,
        trust,
        export_dir,
        export,
    )
    print(
        f"evaluate: test accuracy {metrics['accuracy']:.4f} on {metrics['rows']} rows; "
        f"frozen vs checkpoint max abs diff {metrics['checkpoint_max_abs_diff']:.3g}"
    )
    for fmt, m in metrics.get("export", {}).items():
        print(
            f"evaluate: {fmt}: test accuracy {m['accuracy']:.4f}, outputs within "
            f"{m['max_abs_diff']} of the frozen model, {m['bytes']} bytes"
        )


if __name__ == "__main__":
    run(main)
