"""train: prepared splits → resumable checkpoints, best checkpoint and dvclive logs.

usage: python stages/train.py PREPARED_DIR TRAIN_DIR
Killed at any moment, the next run resumes from the newest complete checkpoint.
With train.workers: N, N worker processes train it (the same bytes); with TF_CONFIG set, this
process is one worker of that cluster (pipeline/workers.py).
"""

import os

from tfpersist.pipeline.params import ModelParams, TrainParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    prepared, out = argv
    params = load_params()
    model, train = ModelParams.from_params(params), TrainParams.from_params(params)
    from tfpersist.pipeline import workers  # TensorFlow from here on, after the CPU pin

    result = workers.train_prepared(prepared, out, model, train, os.environ.get("TF_CONFIG"))
    print(result.summary(model.arch))


if __name__ == "__main__":
    run(main)
