"""train: prepared splits → resumable checkpoints, best checkpoint and dvclive logs.

usage: python stages/train.py PREPARED_DIR TRAIN_DIR
Killed at any moment, the next run resumes from the newest complete checkpoint.
"""

from pathlib import Path

from tfpersist import data, layout
from tfpersist.params import ModelParams, TrainParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    prepared, out = map(Path, argv)
    params = load_params()
    model, train = ModelParams.from_params(params), TrainParams.from_params(params)
    schema = data.read_schema(prepared)
    paths = {name: prepared / layout.split_file(name) for name in ("train", "val")}
    splits = {name: data.load_split(path, schema) for name, path in paths.items()}
    files = [*paths.values(), prepared / layout.SCHEMA]

    from tfpersist import architectures, training  # TensorFlow from here on

    architectures.get(model.arch)
    result = training.train(
        out,
        {name: training.Split(x, y) for name, (x, y) in splits.items()},
        schema.num_classes,
        model,
        train,
        data.digest(files),
    )
    print(
        f"train: {model.arch} trained to step {result.step}; best validation accuracy "
        f"{result.best_val_accuracy:.4f} at step {result.best_step}"
    )


if __name__ == "__main__":
    run(main)
