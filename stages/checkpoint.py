"""checkpoint: the chosen training checkpoint → a clean TF1 inference checkpoint.

usage: python stages/checkpoint.py TRAIN_DIR PREPARED_DIR OUT_DIR
"""

from pathlib import Path

from tfpersist.core import layout
from tfpersist.pipeline.params import CheckpointParams, ModelParams
from tfpersist.tables import data

from _stage import load_params, run


def main(argv: list[str]) -> None:
    train_dir, prepared, out = map(Path, argv)
    params = load_params()
    model, choice = ModelParams.from_params(params), CheckpointParams.from_params(params)
    schema = data.read_schema(prepared)

    source = train_dir / layout.BEST_DIR if choice.select == "best" else train_dir
    from tfpersist.pipeline import release  # TensorFlow from here on

    sig = release.export_inference_checkpoint(source, out, model, schema)
    names = ", ".join(o["name"] for o in sig["outputs"])
    prefix = out / layout.CHECKPOINT_PREFIX
    print(f"checkpoint: {choice.select} checkpoint → {prefix} (outputs: {names})")


if __name__ == "__main__":
    run(main)
