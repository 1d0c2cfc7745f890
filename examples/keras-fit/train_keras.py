"""train, as a Keras `fit`: prepared splits → a resumable run in TRAIN_DIR and the release
model (model.keras + signature.json) in RELEASE_DIR, which the freeze, export, evaluate and
report stages take in place of the TF1 release checkpoint.

usage: python stages/train_keras.py PREPARED_DIR TRAIN_DIR RELEASE_DIR

`build` is the team's model; the rest (named inputs and outputs, seeds, batch order,
BackupAndRestore, the best epoch, dvclive, reproducible bytes) is tfpersist.pipeline.keras_fit.
Killed at any moment, the next run resumes from the last complete epoch to the same bytes.
"""

import functools

from tfpersist.pipeline.params import CheckpointParams, ModelParams, TrainParams

from _stage import load_params, run


def build(inputs, num_classes, train_x, mlp):
    """keras.Input → class probabilities: the layers of params.yaml's ``model.mlp``, on
    features normalized with the training rows' statistics."""
    import keras

    normalize = keras.layers.Normalization(name="normalize")
    normalize.adapt(train_x)
    h = normalize(inputs)
    for i, units in enumerate(mlp["hidden"]):
        h = keras.layers.Dense(units, activation="relu", name=f"hidden_{i}")(h)
        h = keras.layers.Dropout(mlp["dropout"], name=f"dropout_{i}")(h)
    return keras.layers.Dense(num_classes, activation="softmax", name="classes")(h)


def main(argv: list[str]) -> None:
    prepared, train_dir, release_dir = argv
    params = load_params()
    model, train = ModelParams.from_params(params), TrainParams.from_params(params)
    select = CheckpointParams.from_params(params).select

    from tfpersist.pipeline import keras_fit  # TensorFlow from here on, after the CPU pin

    team_model = functools.partial(build, mlp=params["model"]["mlp"])
    result = keras_fit.fit(team_model, prepared, train_dir, release_dir, model, train, select)
    print(
        f"train: {result.epochs} epochs with Keras fit; best validation accuracy "
        f"{result.best_val_accuracy:.4f} at epoch {result.best_epoch}; released {result.model}"
    )


if __name__ == "__main__":
    run(main)
