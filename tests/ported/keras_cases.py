"""Models shaped like those Keras's own saving tests build, to write as ``.keras`` files.

Sources (keras-team/keras, the same at tag v3.15.1 and at the 2026-08 main branch):
keras/src/saving/saving_lib_test.py, keras/src/saving/saving_api_test.py,
keras/src/legacy/saving/legacy_h5_format_test.py, and keras/src/saving/serialization_lib_test.py
(the dict-input, shared-layer, GetItem and layer-as-activation models). Every case records its
origin: the upstream test or helper function (``path::name``), or ``extra: ...`` for the few
built-in layer families (Embedding, GRU, SimpleRNN, Conv2D, Dropout) those files never save.

- ``CASES``: {name: (origin, builder)}; built-in Keras layers only, so a ``.keras`` file of any
  of them loads with ``safe_mode=True`` and must be read.
- ``REFUSED``: {name: (origin, builder, expected)}; the upstream models that carry custom or
  registered objects, Lambda layers or functions outside ``keras.activations``; ``expected`` is
  a substring of the refusal. Their classes are defined inside the builder and registered under
  a ``tfpersist_test...`` package (upstream: ``my_custom_package``, ``my_package``, ``Foo``...).
- ``inputs_for(model, rows, seed)``: deterministic inputs keyed by each Keras input's name.

Each builder takes the ``keras`` module and returns a built model. Ported, not copied:
every layer, input and model is named (Keras numbers unnamed ones process-wide, and names
the input of a Sequential built by a first call or an ``input_shape=`` argument
``keras_tensor_N``, so those get an explicit ``keras.Input``); weights are set from a numpy
RandomState after building (``_fill``) or as the test assigns them, never left to unseeded
initialisers (the initialiser configs stay as upstream wrote them); the 32-feature inputs are
cut to 8 and the 64-unit LSTM to 16; the data a test fits or adapts on comes from RandomState;
the GetItem of ``input[:, 1]`` is built from its op class so that it can be named.

Left out: EfficientNetB0 (test_weights_sharding: millions of parameters); the model whose
``save_own_variables`` raises (test_save_model_exception_raised: it cannot be saved);
unregistered subclassed models saved as weights only (test_redefinition_of_trackable,
test_objects_to_skip_with_functional_subclass_attribute_layer: no config to read);
the unbuilt CustomModelX of test_saving_preserve_unbuilt_state (builders return built models);
a lambda as an activation (test_lambda_fn: the refusal names "a lambda", none of the expected
substrings); the tf_keras backwards-compatibility tests (they need tf_keras; their Keras 3
models are the ones here); the H5IOStore, ShardedH5IOStore, NpzIOStore, DiskIOStore, zip-bomb
and shape-bomb tests (they write stores or hostile files; the genuine model they start from is
``sl_bomb_base``); the deserialisation-of-configs tests of serialization_lib_test.py (no
model); duplicates (the same builder again under another test: test_model_api_endpoint,
DirectoryCreationTest, LoadWeightsTests, the float32 of test_basic_load, ...).
No test in these files is torch- or jax-only; their ``requires_trainable_backend`` marks hold
on TensorFlow.
"""

from __future__ import annotations

import numpy as np

CASES: dict = {}  # name -> (origin, builder)
REFUSED: dict = {}  # name -> (origin, builder, expected substring of the refusal)

SL = "keras/src/saving/saving_lib_test.py::"
SA = "keras/src/saving/saving_api_test.py::"
LH = "keras/src/legacy/saving/legacy_h5_format_test.py::"
SR = "keras/src/saving/serialization_lib_test.py::"
PKG = "tfpersist_test"


def case(origin: str):
    def register(builder):
        CASES[builder.__name__] = (origin, builder)
        return builder

    return register


def refused(origin: str, expected: str):
    assert expected in ("Lambda layer", "custom object", "function"), expected

    def register(builder):
        REFUSED[builder.__name__] = (origin, builder, expected)
        return builder

    return register


def _layers(model):
    """Every layer under ``model``: nested models, wrappers (TimeDistributed, Bidirectional)."""
    for layer in getattr(model, "layers", []):
        yield layer
        yield from _layers(layer)
        for attr in ("layer", "forward_layer", "backward_layer"):
            inner = getattr(layer, attr, None)
            if inner is not None and inner is not layer:
                yield inner
                yield from _layers(inner)


def inputs_for(model, rows: int = 4, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for every ``model.inputs`` (in order), keyed by name: floats uniform in [-1, 1),
    integers within the smallest Embedding vocabulary of the model (else [0, 4)). A fixed
    batch dimension (``keras.Input(..., batch_size=2)``) wins over ``rows``."""
    rng = np.random.RandomState(seed)
    vocab = min(
        (layer.input_dim for layer in _layers(model) if hasattr(layer, "input_dim")), default=4
    )
    out = {}
    for tensor in model.inputs:
        shape = [rows if i == 0 and d is None else (d or 1) for i, d in enumerate(tensor.shape)]
        dtype = np.dtype(str(tensor.dtype))
        if np.issubdtype(dtype, np.integer):
            out[tensor.name] = rng.randint(0, vocab, size=shape).astype(dtype)
        else:
            out[tensor.name] = rng.uniform(-1, 1, size=shape).astype(dtype)
    return out


def _fill(model, seed: int = 0):
    """Set every floating-point weight of a built model from RandomState(seed), in
    ``model.weights`` order: variances (BatchNormalization's moving variance) in [0.5, 1.5),
    the rest in [-0.5, 0.5). Integer state (seed generators, counters) is left alone."""
    rng = np.random.RandomState(seed)
    for variable in model.weights:
        if not str(variable.dtype).startswith(("float", "bfloat")):
            continue
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 1.5, size=shape)
        else:
            value = rng.uniform(-0.5, 0.5, size=shape)
        variable.assign(value.astype(np.float32))
    return model


def _data(seed: int, *shape: int) -> np.ndarray:
    return np.random.RandomState(seed).random_sample(shape).astype(np.float32)


# --- saving_lib_test.py -------------------------------------------------------------------


@case(SL + "_get_basic_sequential_model")
def sl_basic_sequential(keras):
    model = keras.Sequential(
        [
            keras.Input((4,), name="input"),
            keras.layers.Dense(1, name="dense_1"),
            keras.layers.Dense(1, name="dense_2"),
        ],
        name="sequential",
    )
    return _fill(model)


@case(SL + "_get_basic_functional_model")
def sl_basic_functional(keras):
    inputs = keras.Input(shape=(4,), batch_size=2, name="input")
    x = keras.layers.Dense(1, name="first_dense")(inputs)
    outputs = keras.layers.Dense(1, name="second_dense")(x)
    return _fill(keras.Model(inputs, outputs, name="functional"))


@case(SL + "SavingTest.test_compile_arg")
def sl_compile_arg(keras):
    """The basic functional model compiled with SGD and MSE and fitted once."""
    model = sl_basic_functional(keras)
    model.compile("sgd", "mse")
    model.fit(_data(1, 2, 4), _data(2, 2, 1), verbose=0, shuffle=False)
    return model


@case(SL + "SavingTest.test_partial_load")
def sl_partial_load(keras):
    model = keras.Sequential(
        [
            keras.Input(shape=(3,), batch_size=2, name="input"),
            keras.layers.Dense(4, name="dense_4"),
            keras.layers.Dense(5, name="dense_5"),
        ],
        name="original_model",
    )
    return _fill(model)


@case(SL + "SavingTest.test_save_to_fileobj")
def sl_save_to_fileobj(keras):
    """Compiled with Adam and MSE and fitted on [1, 2] as the test does after reloading."""
    model = keras.Sequential(
        [
            keras.Input((1,), name="input"),
            keras.layers.Dense(1, name="dense_1"),
            keras.layers.Dense(1, name="dense_2"),
        ],
        name="sequential",
    )
    _fill(model)
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.array([[1.0], [2.0]]), np.array([[1.0], [2.0]]), verbose=0, shuffle=False)
    return model


@case(SL + "SavingTest.test_load_model_read_only_system")
def sl_read_only_system(keras):
    model = keras.Sequential(
        [keras.Input([1], name="input"), keras.layers.Dense(32, name="dense")], name="sequential"
    )
    return _fill(model)


@case(SL + "SavingTest.test_load_model_concurrently")
def sl_load_concurrently(keras):
    model = keras.Sequential(
        [keras.Input([1], name="input"), keras.layers.Dense(2, name="dense")], name="sequential"
    )
    return _fill(model)


@case(SL + "SavingTest.test_load_model_containing_reused_layer")
def sl_reused_layer(keras):
    inputs = keras.Input((4,), name="input")
    reused_layer = keras.layers.Dense(4, name="reused_dense")
    x = reused_layer(inputs)
    x = keras.layers.Dense(4, name="dense")(x)
    outputs = reused_layer(x)
    return _fill(keras.Model(inputs, outputs, name="functional"))


@case(SL + "SavingAPITest.test_normalization_kpl")
def sl_normalization_adapted(keras):
    model = keras.Sequential(
        [keras.Input(shape=(3,), name="input"), keras.layers.Normalization(name="normalization")],
        name="sequential",
    )
    model.layers[0].adapt(_data(1, 3, 3))
    return model


@case(SL + "SavingAPITest.test_normalization_kpl")
def sl_normalization_mean_variance(keras):
    model = keras.Sequential(
        [
            keras.Input(shape=(3,), name="input"),
            keras.layers.Normalization(
                mean=_data(1, 3).tolist(), variance=_data(2, 3).tolist(), name="normalization"
            ),
        ],
        name="sequential",
    )
    return model


@case(SL + "SavingBattleTest.test_normalization_legacy_h5_format")
def sl_normalization_functional(keras):
    inputs = keras.Input((8,), name="input")  # upstream: 32 features
    normalization = keras.layers.Normalization(name="normalization")
    model = keras.Model(inputs, normalization(inputs), name="functional")
    normalization.adapt(_data(1, 1, 8))
    return model


def _func(keras, in_size=4, out_size=2, name=None):
    inputs = keras.layers.Input(shape=(in_size,), name=f"{name}_input")
    outputs = keras.layers.Dense(out_size, name=f"{name}_dense")(inputs)
    return keras.Model(inputs, outputs=outputs, name=name)


@case(SL + "SavingBattleTest.test_nested_functional_model_saving")
def sl_nested_functional(keras):
    input_a, input_b = keras.Input((4,), name="input_a"), keras.Input((4,), name="input_b")
    out_a = _func(keras, out_size=2, name="func_a")(input_a)
    out_b = _func(keras, out_size=3, name="func_b")(input_b)
    model = keras.Model([input_a, input_b], outputs=[out_a, out_b], name="functional")
    return _fill(model)


@case(SL + "SavingBattleTest.test_nested_shared_functional_model_saving")
def sl_nested_shared_functional(keras):
    inputs = [keras.Input((4,), name="input_a"), keras.Input((4,), name="input_b")]
    func_shared = _func(keras, out_size=4, name="func_shared")
    shared_a = func_shared(inputs[0])
    shared_b = func_shared(inputs[1])
    out_a = keras.layers.Dense(2, name="dense_a")(shared_a)
    out_b = keras.layers.Dense(2, name="dense_b")(shared_b)
    return _fill(keras.Model(inputs, outputs=[out_a, out_b], name="functional"))


@case(SL + "SavingBattleTest.test_bidirectional_lstm_saving")
def sl_bidirectional_lstm(keras):
    inputs = keras.Input((3, 2), name="input")
    lstm = keras.layers.LSTM(16, name="lstm")  # upstream: 64 units
    outputs = keras.layers.Bidirectional(lstm, name="bidirectional")(inputs)
    return _fill(keras.Model(inputs, outputs, name="functional"))


@case(SL + "SavingBattleTest.test_fresh_save_load_emits_no_container_skip_warning")
def sl_einsum_dense(keras):
    inp = keras.layers.Input(shape=(5,), name="input")
    dense = keras.layers.EinsumDense("ab,bc->ac", output_shape=(7,), name="einsum_dense")
    return _fill(keras.Model(inp, dense(inp), name="functional"))


@case(SL + "SafeZipReadTest.test_load_model_rejects_bomb_weights")
def sl_bomb_base(keras):
    """The genuine model the zip- and shape-bomb tests start from (SafeGetH5DatasetTest names
    its Dense 'd')."""
    model = keras.Sequential(
        [keras.Input((4,), name="input"), keras.layers.Dense(3, name="d")], name="sequential"
    )
    return _fill(model)


@case(SL + "SavingH5IOStoreTest.test_h5_io_store_lora")
def sl_lora_dense(keras):
    """The LoRA-enabled Dense of the test, in a model; LoRA kernels nonzero."""
    model = keras.Sequential(
        [keras.Input((8,), name="input"), keras.layers.Dense(units=16, name="dense")],
        name="sequential",
    )
    model.layers[0].enable_lora(4)
    return _fill(model)


# --- saving_api_test.py -------------------------------------------------------------------


def _dense_softmax(keras, dtype=None):
    model = keras.Sequential(
        [
            keras.Input((3,), name="input"),  # upstream: Dense(5, input_shape=(3,))
            keras.layers.Dense(5, dtype=dtype, name="dense"),
            keras.layers.Softmax(name="softmax"),
        ],
        name="sequential",
    )
    return _fill(model)


@case(SA + "SaveModelTests.get_model")
def sa_dense_softmax(keras):
    return _dense_softmax(keras)


@case(SA + "LoadModelTests.test_basic_load")
def sa_dense_softmax_bfloat16(keras):
    return _dense_softmax(keras, "bfloat16")


@case(SA + "LoadModelTests.test_basic_load")
def sa_dense_softmax_float16(keras):
    return _dense_softmax(keras, "float16")


@case(SA + "LoadModelTests.test_basic_load")
def sa_dense_softmax_float64(keras):
    return _dense_softmax(keras, "float64")


@case(SA + "SaveModelTests.test_objects_to_skip")
def sa_objects_to_skip(keras):
    model = keras.Sequential(
        [
            keras.layers.Input((3,), name="input"),
            keras.layers.Dense(5, name="dense_1"),
            keras.layers.Dense(5, name="dense_2"),
        ],
        name="sequential",
    )
    return _fill(model)


# --- legacy_h5_format_test.py -------------------------------------------------------------


@case(LH + "get_sequential_model")
def lh_sequential(keras):
    model = keras.Sequential(
        [
            keras.layers.Input((3,), batch_size=2, name="input"),
            keras.layers.Dense(4, activation="relu", name="dense_1"),
            keras.layers.BatchNormalization(
                moving_mean_initializer="uniform",
                gamma_initializer="uniform",
                name="batch_normalization",
            ),
            keras.layers.Dense(5, activation="softmax", name="dense_2"),
        ],
        name="sequential",
    )
    return _fill(model)


@case(LH + "get_functional_model")
def lh_functional(keras):
    inputs = keras.Input((3,), batch_size=2, name="input")
    x = keras.layers.Dense(4, activation="relu", name="dense_1")(inputs)
    residual = x
    x = keras.layers.BatchNormalization(
        moving_mean_initializer="uniform", gamma_initializer="uniform", name="batch_normalization"
    )(x)
    x = keras.layers.Dense(4, activation="relu", name="dense_2")(x)
    x = keras.layers.Add(name="add")([x, residual])  # upstream: keras.layers.add([...])
    outputs = keras.layers.Dense(5, activation="softmax", name="dense_3")(x)
    return _fill(keras.Model(inputs, outputs, name="functional"))


@case(LH + "LegacyH5WholeModelTest.test_compiled_model_with_various_layers")
def lh_various_layers(keras):
    model = keras.Sequential(name="sequential")
    model.add(keras.Input((3,), name="input"))  # upstream: Dense(2, input_shape=(3,))
    model.add(keras.layers.Dense(2, name="dense"))
    model.add(keras.layers.RepeatVector(3, name="repeat_vector"))
    inner = keras.layers.Dense(3, name="inner_dense")
    model.add(keras.layers.TimeDistributed(inner, name="time_distributed"))
    _fill(model)
    model.compile(optimizer="rmsprop", loss="mean_squared_error")
    return model


@case(LH + "LegacyH5WholeModelTest.test_saving_include_optimizer_false")
def lh_fitted_adam(keras):
    """Compiled with Adam and fitted once: the file holds the optimizer's variables."""
    model = keras.Sequential(
        [keras.Input((10,), name="input"), keras.layers.Dense(1, name="dense")],
        name="sequential",
    )
    _fill(model)
    model.compile("adam", loss="mean_squared_error")
    model.fit(np.ones((10, 10)), np.ones((10, 1)), verbose=0, shuffle=False)
    return model


@case(LH + "LegacyH5WholeModelTest.test_model_loading_with_axis_arg")
def lh_concatenate_axis(keras):
    input1 = keras.layers.Input(shape=(1, 4), name="input1")
    input2 = keras.layers.Input(shape=(1, 4), name="input2")
    concat1 = keras.layers.Concatenate(axis=1, name="concatenate")([input1, input2])
    output = keras.layers.Dense(1, activation="sigmoid", name="dense")(concat1)
    model = _fill(keras.Model(inputs=[input1, input2], outputs=output, name="functional"))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


# --- serialization_lib_test.py ------------------------------------------------------------


@case(SR + "SerializationLibTest.test_dict_inputs_outputs")
def sr_dict_inputs_outputs(keras):
    input_foo = keras.Input((2,), name="foo")
    input_bar = keras.Input((2,), name="bar")
    dense = keras.layers.Dense(1, name="dense")
    output_foo = dense(input_foo)
    output_bar = dense(input_bar)
    model = keras.Model(
        {"foo": input_foo, "bar": input_bar},
        {"foo": output_foo, "bar": output_bar},
        name="functional",
    )
    return _fill(model)


@case(SR + "SerializationLibTest.test_layer_sharing")
def sr_layer_sharing(keras):
    seq = keras.Sequential(
        [
            keras.Input(shape=(3,), name="input"),
            keras.layers.Dense(5, name="dense"),
            keras.layers.Softmax(name="softmax"),
        ],
        name="sequential",
    )
    return _fill(keras.Model(inputs=seq.inputs, outputs=seq.outputs, name="functional"))


@case(SR + "SerializationLibTest.test_numpy_get_item_layer")
def sr_get_item(keras):
    """``input[:, 1]``: a GetItem operation in the graph. Built from the op class, named (the
    ``[]`` form numbers it get_item_N process-wide)."""
    inputs = keras.layers.Input(shape=(2,), name="input")
    get_item = keras.src.ops.numpy.GetItem(name="get_item")
    return keras.Model(inputs, get_item(inputs, (slice(None), 1)), name="functional")


@case(SR + "SerializationLibTest.test_layer_instance_as_activation")
def sr_relu_layer_activation(keras):
    inputs = keras.Input((8,), name="input")
    dense = keras.layers.Dense(units=4, activation=keras.layers.ReLU(name="my_relu"), name="dense")
    return _fill(keras.Model(inputs, dense(inputs), name="functional"))


@case(SR + "SerializationLibTest.test_layer_instance_with_config_as_activation")
def sr_leaky_relu_conv1d(keras):
    inputs = keras.Input((10, 4), name="input")
    leaky_activation = keras.layers.LeakyReLU(negative_slope=0.15, name="my_leaky")
    conv = keras.layers.Conv1D(filters=2, kernel_size=3, activation=leaky_activation, name="conv")
    return _fill(keras.Model(inputs, conv(inputs), name="functional"))


@case(SR + "SerializationLibTest.test_layer_string_as_activation")
def sr_string_activation(keras):
    inputs = keras.Input((8,), name="input")
    dense = keras.layers.Dense(units=4, activation="relu", name="dense")
    return _fill(keras.Model(inputs, dense(inputs), name="functional"))


# --- built-in layer families the upstream saving tests never save -------------------------


@case("extra: Embedding on integer ids, then GRU")
def x_embedding_gru(keras):
    inputs = keras.Input((5,), dtype="int32", name="ids")
    x = keras.layers.Embedding(10, 4, name="embedding")(inputs)
    x = keras.layers.GRU(6, name="gru")(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="dense")(x)
    return _fill(keras.Model(inputs, outputs, name="functional"))


@case("extra: SimpleRNN returning sequences into an LSTM")
def x_simple_rnn_lstm(keras):
    model = keras.Sequential(
        [
            keras.Input((5, 3), name="input"),
            keras.layers.SimpleRNN(4, return_sequences=True, name="simple_rnn"),
            keras.layers.LSTM(4, name="lstm"),
            keras.layers.Dense(1, name="dense"),
        ],
        name="sequential",
    )
    return _fill(model)


@case("extra: Conv2D, BatchNormalization, pooling, seeded Dropout")
def x_conv2d(keras):
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2), name="image"),
            keras.layers.Conv2D(3, 3, padding="same", name="conv"),
            keras.layers.BatchNormalization(name="batch_normalization"),
            keras.layers.ReLU(name="relu"),
            keras.layers.MaxPooling2D(name="max_pooling"),
            keras.layers.Dropout(0.5, seed=1, name="dropout"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(2, name="dense"),
        ],
        name="sequential",
    )
    return _fill(model)


# --- refused: custom and registered objects, Lambda layers, functions ---------------------


def _my_dense(keras, package=PKG):
    """saving_lib_test.py's MyDense: a Dense in a layer with three scalar weights."""

    @keras.saving.register_keras_serializable(package=package)
    class MyDense(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.nested_layer = keras.layers.Dense(self.units, name="dense")

        def build(self, input_shape):
            self.additional_weights = [
                self.add_weight(
                    shape=(), name="my_additional_weight", initializer="ones", trainable=True
                ),
                self.add_weight(
                    shape=(), name="my_additional_weight_2", initializer="ones", trainable=True
                ),
            ]
            self.weights_in_dict = {
                "my_weight": self.add_weight(
                    shape=(), name="my_dict_weight", initializer="ones", trainable=True
                ),
            }
            self.nested_layer.build(input_shape)

        def call(self, inputs):
            return self.nested_layer(inputs)

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    return MyDense


def _custom_model_x(keras):
    MyDense = _my_dense(keras)

    @keras.saving.register_keras_serializable(package=PKG)
    class CustomModelX(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.dense1 = MyDense(1, name="my_dense_1")
            self.dense2 = MyDense(1, name="my_dense_2")

        def call(self, inputs):
            out = self.dense1(inputs)
            return self.dense2(out)

    return MyDense, CustomModelX


@refused(SL + "_get_subclassed_model", "custom object")
def r_sl_subclassed(keras):
    _, CustomModelX = _custom_model_x(keras)
    model = CustomModelX(name="custom_model_x")
    model(_data(1, 2, 4))
    return _fill(model)


@refused(SL + "_get_custom_sequential_model", "custom object")
def r_sl_custom_sequential(keras):
    MyDense = _my_dense(keras)
    model = keras.Sequential(
        [
            keras.Input((4,), name="input"),
            MyDense(1, name="my_dense_1"),
            MyDense(1, name="my_dense_2"),
        ],
        name="sequential",
    )
    return _fill(model)


@refused(SL + "_get_custom_functional_model", "custom object")
def r_sl_custom_functional(keras):
    MyDense = _my_dense(keras)
    inputs = keras.Input(shape=(4,), batch_size=2, name="input")
    x = MyDense(1, name="first_dense")(inputs)
    outputs = MyDense(1, name="second_dense")(x)
    return _fill(keras.Model(inputs, outputs, name="functional"))


@refused(SL + "_get_subclassed_functional_model", "custom object")
def r_sl_subclassed_functional(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class SubclassFunctional(keras.Model):
        def __init__(self, **kwargs):
            inputs = keras.Input(shape=(4,), batch_size=2, name="input")
            dense = keras.layers.Dense(1, name="first_dense")
            x = dense(inputs)
            outputs = keras.layers.Dense(1, name="second_dense")(x)
            super().__init__(inputs=inputs, outputs=outputs, **kwargs)
            self.layer_attr = dense

        def get_config(self):
            return {}

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    return _fill(SubclassFunctional(name="subclass_functional"))


@refused(SL + "_get_basic_functional_model", "function")
def r_sl_custom_loss(keras):
    """compile=True: the loss is the registered function my_mean_squared_error."""

    @keras.saving.register_keras_serializable(package=PKG)
    def my_mean_squared_error(y_true, y_pred):
        return keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)

    model = sl_basic_functional(keras)
    model.compile(
        optimizer="adam", loss=my_mean_squared_error, metrics=[keras.metrics.Hinge(), "mse"]
    )
    return model


@refused(SL + "SavingTest.test_saving_custom_assets_and_variables", "custom object")
def r_sl_custom_saving(keras):
    MyDense = _my_dense(keras)
    stored = np.random.RandomState(0).random_sample((10,))

    @keras.saving.register_keras_serializable(package=PKG)
    class LayerWithCustomSaving(MyDense):
        def build(self, input_shape):
            self.assets = "These are my assets"
            self.stored_variables = stored
            return super().build(input_shape)

        def save_assets(self, inner_path):
            with open(f"{inner_path}/assets.txt", "w") as f:
                f.write(self.assets)

        def save_own_variables(self, store):
            store["variables"] = self.stored_variables

        def load_assets(self, inner_path):
            with open(f"{inner_path}/assets.txt") as f:
                self.assets = f.read()

        def load_own_variables(self, store):
            self.stored_variables = np.array(store["variables"])

    @keras.saving.register_keras_serializable(package=PKG)
    class ModelWithCustomSaving(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.custom_dense = LayerWithCustomSaving(1, name="custom_dense")

        def call(self, inputs):
            return self.custom_dense(inputs)

    model = ModelWithCustomSaving(name="model_with_custom_saving")
    model(_data(1, 2, 4))
    return _fill(model)


@refused(SL + "SavingTest.test_compile_overridden_warnings_sequential", "custom object")
def r_sl_compile_overriding_sequential(keras):
    MyDense = _my_dense(keras)

    @keras.saving.register_keras_serializable(package=PKG)
    class CompileOverridingSequential(keras.Sequential):
        def compile(self, *args, **kwargs):
            super().compile(*args, **kwargs)

    model = CompileOverridingSequential(
        [
            keras.Input((3,), dtype="int32", name="ids"),
            keras.layers.Embedding(4, 1, name="embedding"),
            MyDense(1, name="my_dense_1"),
            MyDense(1, name="my_dense_2"),
        ],
        name="compile_overriding_sequential",
    )
    _fill(model)
    model.compile("sgd", "mse")
    return model


@refused(SL + "SavingTest.test_compile_overridden_warnings_subclassed", "custom object")
def r_sl_compile_overriding_model(keras):
    MyDense = _my_dense(keras)

    @keras.saving.register_keras_serializable(package=PKG)
    class CompileOverridingModel(keras.Model):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.dense1 = MyDense(1, name="my_dense")

        def compile(self, *args, **kwargs):
            super().compile(*args, **kwargs)

        def call(self, inputs):
            return self.dense1(inputs)

    model = CompileOverridingModel(name="compile_overriding_model")
    model(_data(1, 2, 4))
    _fill(model)
    model.compile("sgd", "mse")
    return model


@refused(SL + "SavingTest.test_load_model_exception_raised", "custom object")
def r_sl_raise_on_load(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class RaiseErrorLayer(keras.layers.Layer):
        def __init__(self, units, **kwargs):
            super().__init__(**kwargs)
            self.units = units
            self.dense = keras.layers.Dense(units, name="dense")

        def call(self, inputs):
            return self.dense(inputs)

        def load_own_variables(self, store):
            raise ValueError

        def get_config(self):
            return {**super().get_config(), "units": self.units}

    model = keras.Sequential(
        [keras.Input([1], name="input"), RaiseErrorLayer(1, name="raise_error_layer")],
        name="sequential",
    )
    return _fill(model)


@refused(SL + "SavingAPITest.test_safe_mode", "Lambda layer")
def r_sl_lambda(keras):
    model = keras.Sequential(
        [
            keras.Input(shape=(3,), name="input"),
            keras.layers.Lambda(lambda x: x * 2, name="lambda"),
        ],
        name="sequential",
    )
    return model


@refused(SL + "SavingBattleTest.test_custom_object_without_from_config", "custom object")
def r_sl_growth_factor(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class GrowthFactor:
        def __init__(self, factor):
            self.factor = factor

        def __call__(self, inputs):
            return inputs * self.factor

        def get_config(self):
            return {"factor": self.factor}

    inputs = keras.Input(shape=(4, 4), name="input")
    dense = keras.layers.Dense(1, activation=GrowthFactor(0.5), name="dense")
    return _fill(keras.Model(inputs, dense(inputs), name="functional"))


@refused(
    SL + "SavingBattleTest.test_complex_model_without_explicit_deserialization", "custom object"
)
def r_sl_complex_model(keras):
    @keras.saving.register_keras_serializable(package=PKG + "_complex")
    class FactorLayer(keras.layers.Layer):
        def __init__(self, factor, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {"factor": self.factor}

    @keras.saving.register_keras_serializable(package=PKG + "_complex")
    class ComplexModel(keras.layers.Layer):
        def __init__(self, first_layer, second_layer=None, **kwargs):
            super().__init__(**kwargs)
            self.first_layer = first_layer
            if second_layer is not None:
                self.second_layer = second_layer
            else:
                self.second_layer = keras.layers.Dense(8, name="second_layer")

        def get_config(self):
            config = super().get_config()
            config.update({"first_layer": self.first_layer, "second_layer": self.second_layer})
            return config

        def call(self, inputs):
            return self.first_layer(self.second_layer(inputs))

    inputs = keras.Input((8,), name="input")  # upstream: 32 features
    layer = ComplexModel(first_layer=FactorLayer(0.5, name="factor_layer"), name="complex_model")
    return _fill(keras.Model(inputs, layer(inputs), name="functional"))


@refused(SL + "SavingBattleTest.test_legacy_h5_format", "custom object")
def r_sl_custom_in_functional(keras):
    MyDense, CustomModelX = _custom_model_x(keras)
    inputs = keras.Input((8,), name="input")  # upstream: 32 features
    x = MyDense(2, name="my_dense")(inputs)
    outputs = CustomModelX(name="custom_model_x")(x)
    return _fill(keras.Model(inputs, outputs, name="functional"))


def _nested_container(keras, kind: str):
    """test_nested_container_layer_saving's NestedContainerModel: Dense layers in a list, tuple
    or dict of lists, their kernels the constants 1..4 as the test assigns them."""
    if kind == "dict":

        def values(b):
            return b.values()
    else:

        def values(b):
            return b

    @keras.saving.register_keras_serializable(package=f"{PKG}_nested_{kind}")
    class NestedContainerModel(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            inner1 = [keras.layers.Dense(8, name=f"dense_a{i}") for i in range(2)]
            inner2 = [keras.layers.Dense(8, name=f"dense_b{i}") for i in range(2)]
            if kind == "dict":
                self.blocks = {"block_a": inner1, "block_b": inner2}
            elif kind == "list":
                self.blocks = [inner1, inner2]
            else:
                self.blocks = (tuple(inner1), tuple(inner2))
            self.out_layer = keras.layers.Dense(2, name="out_layer")

        def call(self, x):
            for block in values(self.blocks):
                for layer in block:
                    x = layer(x)
            return self.out_layer(x)

        def get_config(self):
            return super().get_config()

    model = NestedContainerModel(name=f"nested_{kind}_model")
    model(_data(1, 2, 4))
    _fill(model)
    for i, block in enumerate(values(model.blocks)):
        for j, layer in enumerate(block):
            layer.kernel.assign(np.full(tuple(layer.kernel.shape), float(i * 2 + j + 1)))
            layer.bias.assign(np.zeros(tuple(layer.bias.shape)))
    return model


@refused(SL + "SavingBattleTest.test_nested_container_layer_saving", "custom object")
def r_sl_nested_list(keras):
    return _nested_container(keras, "list")


@refused(SL + "SavingBattleTest.test_nested_container_layer_saving", "custom object")
def r_sl_nested_tuple(keras):
    return _nested_container(keras, "tuple")


@refused(SL + "SavingBattleTest.test_nested_container_layer_saving", "custom object")
def r_sl_nested_dict(keras):
    return _nested_container(keras, "dict")


@refused(SL + "SavingBattleTest.test_deeply_nested_container_layer_saving", "custom object")
def r_sl_deeply_nested(keras):
    @keras.saving.register_keras_serializable(package=PKG + "_deeply_nested")
    class DeeplyNestedModel(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.blocks = [[[keras.layers.Dense(4, name=f"dense_{i}") for i in range(2)]]]
            self.out_layer = keras.layers.Dense(2, name="out_layer")

        def call(self, x):
            for block_list in self.blocks:
                for block in block_list:
                    for layer in block:
                        x = layer(x)
            return self.out_layer(x)

        def get_config(self):
            return super().get_config()

    model = DeeplyNestedModel(name="deeply_nested_model")
    model(_data(1, 2, 4))
    return _fill(model)


@refused(SL + "SavingBattleTest.test_mixed_nested_container_layer_saving", "custom object")
def r_sl_mixed_nested(keras):
    @keras.saving.register_keras_serializable(package=PKG + "_mixed_nested")
    class MixedNestedModel(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.blocks = [
                (keras.layers.Dense(4, name="dense_0"), keras.layers.Dense(4, name="dense_1"))
            ]
            self.out_layer = keras.layers.Dense(2, name="out_layer")

        def call(self, x):
            for block in self.blocks:
                for layer in block:
                    x = layer(x)
            return self.out_layer(x)

        def get_config(self):
            return super().get_config()

    model = MixedNestedModel(name="mixed_nested_model")
    model(_data(1, 2, 4))
    return _fill(model)


@refused(SL + "SavingBattleTest.test_cyclic_container_saving", "custom object")
def r_sl_cyclic_container(keras):
    @keras.saving.register_keras_serializable(package=PKG + "_cyclic_container")
    class CyclicContainerModel(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.blocks = []
            self.blocks.append(self.blocks)
            self.out = keras.layers.Dense(2, name="out")

        def call(self, x):
            return self.out(x)

        def get_config(self):
            return super().get_config()

    model = CyclicContainerModel(name="cyclic_container_model")
    model(_data(1, 2, 4))
    return _fill(model)


@refused(SL + "SavingBattleTest.test_legacy_load_skips_missing_nested_containers", "custom object")
def r_sl_nested_dense(keras):
    """NestedDenseModel with the fixture's kernels: 0.1 * (i + 1), out 0.5, bias 0."""

    @keras.saving.register_keras_serializable(package=PKG + "_legacy_nested_container")
    class NestedDenseModel(keras.Model):
        def __init__(self, num=3, **kwargs):
            super().__init__(**kwargs)
            self.num = num
            self.blocks = [
                (keras.layers.Dense(4, use_bias=False, name=f"d_{i}"),) for i in range(num)
            ]
            self.out = keras.layers.Dense(2, name="out")

        def call(self, x):
            for (d,) in self.blocks:
                x = d(x)
            return self.out(x)

        def get_config(self):
            cfg = super().get_config()
            cfg["num"] = self.num
            return cfg

    model = NestedDenseModel(name="nested_dense_model")
    model(_data(1, 2, 4))
    for i, (d,) in enumerate(model.blocks):
        d.kernel.assign(np.full((4, 4), 0.1 * (i + 1)))
    model.out.kernel.assign(np.full((4, 2), 0.5))
    model.out.bias.assign(np.zeros((2,)))
    return model


@refused(SA + "LoadModelTests.test_load_model_with_custom_objects", "custom object")
def r_sa_custom_layer(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class CustomLayer(keras.layers.Layer):
        def call(self, inputs):
            return inputs

    return keras.Sequential(
        [keras.Input((3,), name="input"), CustomLayer(name="custom_layer")], name="sequential"
    )


@refused(LH + "get_subclassed_model", "custom object")
def r_lh_subclassed(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class MyModel(keras.Model):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.dense_1 = keras.layers.Dense(3, activation="relu", name="dense_1")
            self.dense_2 = keras.layers.Dense(1, activation="sigmoid", name="dense_2")
            self.bias = self.add_weight(
                name="bias", shape=[1], trainable=True, initializer=keras.initializers.Zeros()
            )

        def call(self, x):
            x = self.dense_1(x)
            x = self.dense_2(x)
            x += keras.ops.cast(self.bias, x.dtype)
            return x

    model = MyModel(name="my_model")
    model(_data(1, 2, 3))
    return _fill(model)


@refused(LH + "LegacyH5WholeModelTest.test_saving_lambda", "Lambda layer")
def r_lh_lambda_arguments(keras):
    mean = keras.ops.convert_to_tensor(_data(1, 4, 2, 3))
    std = keras.ops.convert_to_tensor(_data(2, 4, 2, 3) + 1e-5)
    inputs = keras.layers.Input(shape=(4, 2, 3), name="input")
    output = keras.layers.Lambda(
        lambda image, mu, std: (image - mu) / std,
        arguments={"mu": mean, "std": std},
        name="lambda",
    )(inputs)
    model = keras.Model(inputs, output, name="functional")
    model.compile(loss="mean_squared_error", optimizer="sgd", metrics=["acc"])
    return model


def _registered_dense(keras, package):
    @keras.saving.register_keras_serializable(package=package)
    class MyDense(keras.layers.Dense):
        def __init__(self, units, **kwargs):
            super().__init__(units, **kwargs)

    return MyDense


@refused(LH + "LegacyH5WholeModelTest.test_custom_sequential_registered_no_scope", "custom object")
def r_lh_registered_dense_sequential(keras):
    MyDense = _registered_dense(keras, PKG + "_my_package")
    model = keras.Sequential(
        layers=[keras.layers.Input(shape=[1], name="input"), MyDense(1, name="my_dense")],
        name="sequential",
    )
    return _fill(model)


@refused(LH + "LegacyH5WholeModelTest.test_custom_functional_registered_no_scope", "custom object")
def r_lh_registered_dense_functional(keras):
    MyDense = _registered_dense(keras, PKG + "_my_package")
    inputs = keras.layers.Input(shape=[1], name="input")
    outputs = MyDense(1, name="my_dense")(inputs)
    return _fill(keras.Model(inputs, outputs, name="functional"))


@refused(
    LH + "LegacyH5WholeModelTest.test_custom_function_from_custom_objects_no_registration",
    "custom object",
)
def r_lh_dense_calling_function(keras):
    def custom_fn(x):
        return x * 2.0

    @keras.saving.register_keras_serializable(package=PKG)
    class MyDenseCallingFn(keras.layers.Dense):
        def call(self, inputs):
            return custom_fn(super().call(inputs))

    inputs = keras.layers.Input(shape=[1], name="input")
    outputs = MyDenseCallingFn(1, name="my_dense")(inputs)
    return _fill(keras.Model(inputs, outputs, name="functional"))


@refused(LH + "LegacyH5WholeModelTest.test_nested_layers", "custom object")
def r_lh_nested_layers(keras):
    serialization = keras.saving

    @keras.saving.register_keras_serializable(package=PKG)
    class MyLayer(keras.layers.Layer):
        def __init__(self, sublayers, **kwargs):
            super().__init__(**kwargs)
            self.sublayers = sublayers

        def call(self, x):
            prev_input = x
            for layer in self.sublayers:
                prev_input = layer(prev_input)
            return prev_input

        def get_config(self):
            config = super().get_config()
            config["sublayers"] = serialization.serialize_keras_object(self.sublayers)
            return config

        @classmethod
        def from_config(cls, config):
            config["sublayers"] = serialization.deserialize_keras_object(config["sublayers"])
            return cls(**config)

    @keras.saving.register_keras_serializable(package=PKG + "_foo")
    class RegisteredSubLayer(keras.layers.Layer):
        def call(self, x):  # as in LegacyH5BackwardsCompatTest (the Keras 3 test's has none)
            return x

    layer = MyLayer(
        [keras.layers.Dense(2, name="MyDense"), RegisteredSubLayer(name="MySubLayer")],
        name="my_layer",
    )
    model = keras.Sequential([keras.Input((2,), name="input"), layer], name="sequential")
    return _fill(model)


def _custom_layer(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class CustomLayer(keras.layers.Layer):
        def __init__(self, factor, **kwargs):  # upstream: no **kwargs (so no name)
            super().__init__(**kwargs)
            self.factor = factor

        def call(self, x):
            return x * self.factor

        def get_config(self):
            return {"factor": self.factor}

    return CustomLayer


@refused(SR + "SerializationLibTest.test_custom_layer", "custom object")
def r_sr_custom_layer(keras):
    CustomLayer = _custom_layer(keras)
    return keras.Sequential(
        [keras.Input((2,), name="input"), CustomLayer(factor=2, name="custom_layer")],
        name="sequential",
    )


@refused(SR + "NestedCustomLayer", "custom object")
def r_sr_nested_custom_layer(keras):
    """test_custom_layer's NestedCustomLayer: a Dense with activation custom_fn inside."""

    def custom_fn(x):
        return x**2

    @keras.saving.register_keras_serializable(package=PKG)
    class NestedCustomLayer(keras.layers.Layer):
        def __init__(self, factor, dense=None, activation=None, **kwargs):
            super().__init__(**kwargs)
            self.factor = factor
            if dense is None:
                self.dense = keras.layers.Dense(1, activation=custom_fn, name="dense")
            else:
                self.dense = keras.saving.deserialize_keras_object(dense)
            self.activation = keras.saving.deserialize_keras_object(activation)

        def call(self, x):
            return self.dense(x * self.factor)

        def get_config(self):
            return {"factor": self.factor, "dense": self.dense, "activation": self.activation}

    layer = NestedCustomLayer(factor=2, name="nested_custom_layer")
    model = keras.Sequential([keras.Input((2,), name="input"), layer], name="sequential")
    return _fill(model)


@refused(SR + "SerializationLibTest.test_custom_fn", "function")
def r_sr_custom_fn(keras):
    """A Dense whose activation is an unregistered function (upstream passes it in
    custom_objects)."""

    def custom_fn(x):
        return x**2

    inputs = keras.Input((2,), name="input")
    dense = keras.layers.Dense(1, activation=custom_fn, name="dense")
    return _fill(keras.Model(inputs, dense(inputs), name="functional"))


@refused(SR + "SerializationLibTest.test_keras36_custom_function_reloading", "function")
def r_sr_registered_fn(keras):
    """A Dense whose activation is a function registered with register_keras_serializable."""

    @keras.saving.register_keras_serializable(package=PKG + "_serial_test")
    def custom_registered_fn(x):
        return x**2

    inputs = keras.Input((2,), name="input")
    dense = keras.layers.Dense(1, activation=custom_registered_fn, name="dense")
    return _fill(keras.Model(inputs, dense(inputs), name="functional"))


@refused(SR + "SerializationLibTest.test_shared_inner_layer", "custom object")
def r_sr_shared_inner_layer(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class WrapperLayer(keras.layers.Wrapper):
        def call(self, x):
            return self.layer(x)

    input_1 = keras.Input((2,), name="input_1")
    input_2 = keras.Input((2,), name="input_2")
    shared_layer = keras.layers.Dense(1, name="shared_dense")
    output_1 = shared_layer(input_1)
    output_2 = WrapperLayer(shared_layer, name="wrapper_layer")(input_2)
    model = keras.Model([input_1, input_2], [output_1, output_2], name="functional")
    return _fill(model)


@refused(SR + "SerializationLibTest.test_functional_subclass", "custom object")
def r_sr_plain_functional_subclass(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class PlainFunctionalSubclass(keras.Model):
        pass

    inputs = keras.Input((2,), batch_size=3, name="input")
    outputs = keras.layers.Dense(1, name="dense")(inputs)
    return _fill(PlainFunctionalSubclass(inputs, outputs, name="plain_functional_subclass"))


@refused(SR + "SerializationLibTest.test_functional_subclass", "custom object")
def r_sr_functional_subclass_init(keras):
    @keras.saving.register_keras_serializable(package=PKG)
    class FunctionalSubclassWCustomInit(keras.Model):
        def __init__(self, num_units=2):
            inputs = keras.Input((2,), batch_size=3, name="input")
            outputs = keras.layers.Dense(num_units, name="dense")(inputs)
            super().__init__(inputs, outputs, name="functional_subclass_w_custom_init")
            self.num_units = num_units

        def get_config(self):
            return {"num_units": self.num_units}

    return _fill(FunctionalSubclassWCustomInit(num_units=3))


@refused(SR + "SerializationLibTest.test_shared_object", "custom object")
def r_sr_shared_object(keras):
    """Two custom layers sharing one custom activation object, in a Sequential."""

    @keras.saving.register_keras_serializable(package=PKG)
    class MyLayer(keras.layers.Layer):
        def __init__(self, activation, **kwargs):
            super().__init__(**kwargs)
            if isinstance(activation, dict):
                self.activation = keras.saving.deserialize_keras_object(activation)
            else:
                self.activation = activation

        def call(self, x):
            return self.activation(x)

        def get_config(self):
            config = super().get_config()
            config["activation"] = self.activation
            return config

    @keras.saving.register_keras_serializable(package=PKG)
    class SharedActivation:
        def __call__(self, x):
            return x**2

        def get_config(self):
            return {}

        @classmethod
        def from_config(cls, config):
            return cls()

    shared_act = SharedActivation()
    return keras.Sequential(
        [
            keras.Input((3,), name="input"),
            MyLayer(activation=shared_act, name="my_layer_1"),
            MyLayer(activation=shared_act, name="my_layer_2"),
        ],
        name="sequential",
    )


@refused(SR + "SerializationLibTest.test_lambda_layer", "Lambda layer")
def r_sr_lambda_layer(keras):
    inputs = keras.Input((2,), name="input")
    outputs = keras.layers.Lambda(lambda x: x**2, name="lambda")(inputs)
    return keras.Model(inputs, outputs, name="functional")
