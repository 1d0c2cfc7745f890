"""evaluate: the frozen model on the test split → metrics and a confusion-matrix plot.

usage: python stages/evaluate.py FROZEN_PB CHECKPOINT_DIR PREPARED_DIR METRICS_JSON CONFUSION_CSV
The model is loaded from the .pb alone; the release checkpoint is run on the same rows to
record how far the frozen outputs are from it (0, or float noise). A frozen graph with ops
outside the inference allowlist (safety.py) is refused unless TFPERSIST_ALLOW_OPS=A,B names
them or TFPERSIST_ALLOW_UNSAFE_OPS=1.
"""

import os
from pathlib import Path

from tfpersist import atomic, data, layout
from tfpersist.params import ModelParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    frozen_pb, checkpoint_dir, prepared, metrics_path, confusion_path = argv
    model = ModelParams.from_params(load_params())
    schema = data.read_schema(prepared)
    x, y = data.load_split(Path(prepared) / layout.split_file("test"), schema)

    from tfpersist import evaluation, safety
    from tfpersist.runner import Runner  # TensorFlow from here on

    outputs = model.output_nodes
    with Runner.from_frozen(frozen_pb) as frozen:
        frozen.trust = safety.Trust.of(
            os.environ.get("TFPERSIST_ALLOW_UNSAFE_OPS") == "1",
            os.environ.get("TFPERSIST_ALLOW_OPS", "").split(","),
        )
        got = frozen.run(x, model.input_node, outputs)
    with Runner.from_checkpoint(checkpoint_dir) as checkpoint:
        want = checkpoint.run(x, model.input_node, outputs)
    metrics = evaluation.classification_metrics(
        y, got[model.predictions_node], got[model.probabilities_node]
    )
    metrics["checkpoint_max_abs_diff"] = evaluation.agreement(got, want)
    atomic.write_json(metrics_path, metrics)
    atomic.write_text(
        confusion_path,
        data.to_csv_text(evaluation.confusion_rows(y, got[model.predictions_node])),
    )
    print(
        f"evaluate: test accuracy {metrics['accuracy']:.4f} on {metrics['rows']} rows; "
        f"frozen vs checkpoint max abs diff {metrics['checkpoint_max_abs_diff']:.3g}"
    )


if __name__ == "__main__":
    run(main)
