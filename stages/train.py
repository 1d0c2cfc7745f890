"""train: prepared splits → resumable checkpoints, best checkpoint and dvclive logs.

usage: python stages/train.py PREPARED_DIR TRAIN_DIR
Killed at any moment, the next run resumes from the newest complete checkpoint.
"""

from tfpersist.pipeline.params import ModelParams, TrainParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    prepared, out = argv
    params = load_params()
    model, train = ModelParams.from_params(params), TrainParams.from_params(params)
    from tfpersist.pipeline import training  # TensorFlow from here on, after the CPU pin

    result = training.train_prepared(prepared, out, model, train)
    print(
        f"train: {model.arch} trained to step {result.step}; best validation accuracy "
        f"{result.best_val_accuracy:.4f} at step {result.best_step}"
    )


if __name__ == "__main__":
    run(main)
