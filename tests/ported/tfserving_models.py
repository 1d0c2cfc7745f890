"""TF Serving's test SavedModels ``saved_model_half_plus_two*`` / ``saved_model_half_plus_three``,
rebuilt with TF 2.x's tf.compat.v1 (graph mode, SavedModelBuilder) for tests/serving.

Ported from tensorflow/serving (Apache-2.0)
``tensorflow_serving/servables/tensorflow/testdata/saved_model_half_plus_two.py``
(``_generate_saved_model_for_half_plus_two``, the TF1 path, device cpu, no tflite/mkl), with the
differences the checked-in models show (read from their saved_model.pb in the same repository);
``two_versions`` gives a signature_def map equal (proto equality) to the checked-in
``saved_model_half_plus_two_2_versions/00000123`` and the metadata of TF Serving's
``saved_model_half_plus_two_2_versions_metadata.json``:

  flavor "two_versions"  = saved_model_half_plus_two_2_versions/0000012{3,4} (TF 1.1.0-rc2):
      tf_example Placeholder(string) of UNKNOWN rank (no shape), signatures
      serving_default, regress_x_to_y, regress_x_to_y2, regress_x2_to_y3,
      classify_x_to_y, classify_x2_to_y3; y3 = a*x2 + c (no a2/c2). This is the model of
      TF Serving's http_rest_api_handler_test.cc and of
      saved_model_half_plus_two_2_versions_metadata.json.
  flavor "current"       = what the generator's text writes today: tf_example shape [None];
      no classify_x2_to_y3; y3 = a2*x2 + c2 (extra variables a2, c2). The checked-in
      saved_model_half_plus_two_cpu (TF 1.14) is this graph except that its tf_example is
      still of unknown rank (the [None] came later; the model was not regenerated).
  flavor "three"         = saved_model_half_plus_three/00000123 (TF 1.0.0-rc2): b = 3,
      only x is parsed from tf.Example; x2 is a float Placeholder; signatures
      serving_default (x:0 -> y:0, no shapes) and "tensorflow/serving/regress"
      (inputs: tf_example:0 -> outputs: Identity:0 = identity(y)).

Usage: python tfserving_models.py OUT_BASE [--flavor two_versions|current|three]
       [--versions 123,124] [--b 2.0] [+ OUT_BASE --flavor ...]
Writes OUT_BASE/<version zero-padded to 8 digits>/ (saved_model.pb, variables/, assets/foo.txt);
several OUT_BASE groups build in one process. TF1 behaviour (``disable_eager_execution``, ref
variables as TF 1.x wrote them) is process-wide: tests run this as a subprocess.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile

import tensorflow.compat.v1 as tf

tf.disable_eager_execution()

sig_utils = tf.saved_model.signature_def_utils
consts = tf.saved_model.signature_constants
build_info = tf.saved_model.utils.build_tensor_info


def _feature_spec(with_x2: bool = True) -> dict:
    # tensorflow.Example contains two features "x" and "x2" (x2 defaults to 0.0).
    spec = {"x": tf.FixedLenFeature([1], dtype=tf.float32)}
    if with_x2:
        spec["x2"] = tf.FixedLenFeature([1], dtype=tf.float32, default_value=[0.0])
    return spec


def _predict(x, y):
    return sig_utils.build_signature_def(
        {"x": build_info(x)}, {"y": build_info(y)}, consts.PREDICT_METHOD_NAME
    )


def _regress(inp, out):
    return sig_utils.build_signature_def(
        {consts.REGRESS_INPUTS: build_info(inp)},  # "inputs"
        {consts.REGRESS_OUTPUTS: build_info(out)},  # "outputs"
        consts.REGRESS_METHOD_NAME,  # "tensorflow/serving/regress"
    )


def _classify(inp, scores):
    return sig_utils.build_signature_def(
        {consts.CLASSIFY_INPUTS: build_info(inp)},  # "inputs"
        {consts.CLASSIFY_OUTPUT_SCORES: build_info(scores)},  # "scores"
        consts.CLASSIFY_METHOD_NAME,  # "tensorflow/serving/classify"
    )


def _asset_file(scratch: str):
    """The generator's asset: assets/foo.txt holding "asset-file-contents", plus a
    `filename_tensor` variable assigned "foo.txt" by the main op."""
    os.makedirs(scratch, exist_ok=True)
    path = os.path.join(scratch, "foo.txt")
    with open(path, "w") as f:
        f.write("asset-file-contents")
    assets_filepath = tf.constant(path)
    tf.add_to_collection(tf.GraphKeys.ASSET_FILEPATHS, assets_filepath)
    filename_tensor = tf.Variable(
        "foo.txt", name="filename_tensor", trainable=False, collections=[]
    )
    return filename_tensor.assign("foo.txt")


def build(export_dir: str, flavor: str = "two_versions", b: float | None = None) -> str:
    if b is None:
        b = 3.0 if flavor == "three" else 2.0
    builder = tf.saved_model.builder.SavedModelBuilder(export_dir)
    scratch = tempfile.TemporaryDirectory(prefix="hp2-assets-")  # copied into assets/ on save
    with scratch, tf.Session(graph=tf.Graph()) as sess:
        with tf.device("/cpu:0"):
            a = tf.Variable(0.5, name="a")
            bv = tf.Variable(b, name="b")
            c = tf.Variable(3.0, name="c")
            shape = [None] if flavor == "current" else None  # None: unknown rank
            serialized = tf.placeholder(tf.string, name="tf_example", shape=shape)
            parsed = tf.parse_example(serialized, _feature_spec(with_x2=flavor != "three"))
            if flavor != "three":
                for t in parsed.values():  # TF 1.1 inferred [-1, 1] from an unknown-rank
                    t.set_shape([None, 1])  # input; TF 2.x's ParseExampleV2 leaves it unknown
            x = tf.identity(parsed["x"], name="x")
            y = tf.identity(tf.add(tf.multiply(a, x), bv), name="y")
            if flavor == "three":
                x2 = tf.placeholder(tf.float32, name="x2")
                y2 = tf.identity(tf.add(tf.multiply(a, x2), c), name="y2")
                regress_out = tf.identity(y, name="Identity")  # "Identity:0"
            else:
                y2 = tf.identity(tf.add(tf.multiply(a, x), c), name="y2")
                x2 = tf.identity(parsed["x2"], name="x2")
                if flavor == "current":
                    a2 = tf.Variable(0.5, name="a2")
                    c2 = tf.Variable(3.0, name="c2")
                    y3 = tf.identity(tf.add(tf.multiply(a2, x2), c2), name="y3")
                else:
                    y3 = tf.identity(tf.add(tf.multiply(a, x2), c), name="y3")
        assign_filename_op = _asset_file(scratch.name)

        if flavor == "three":
            # The TF 1.0.0-rc2 export recorded TensorInfos with name and dtype only (no
            # tensor_shape), and DT_FLOAT as the dtype of the string tf_example:0 (sic).
            def bare(t, dtype=None):
                info = build_info(t)
                info.ClearField("tensor_shape")
                if dtype is not None:
                    info.dtype = dtype
                return info

            float_enum = tf.float32.as_datatype_enum
            signatures = {
                consts.DEFAULT_SERVING_SIGNATURE_DEF_KEY: sig_utils.build_signature_def(
                    {"x": bare(x)}, {"y": bare(y)}, consts.PREDICT_METHOD_NAME
                ),
                consts.REGRESS_METHOD_NAME: sig_utils.build_signature_def(
                    {consts.REGRESS_INPUTS: bare(serialized, float_enum)},
                    {consts.REGRESS_OUTPUTS: bare(regress_out)},
                    consts.REGRESS_METHOD_NAME,
                ),
            }
        else:
            signatures = {
                "regress_x_to_y": _regress(serialized, y),
                "regress_x_to_y2": _regress(serialized, y2),
                "regress_x2_to_y3": _regress(x2, y3),
                "classify_x_to_y": _classify(serialized, y),
                consts.DEFAULT_SERVING_SIGNATURE_DEF_KEY: _predict(x, y),
            }
            if flavor == "two_versions":
                signatures["classify_x2_to_y3"] = _classify(x2, y3)
        sess.run(tf.global_variables_initializer())
        builder.add_meta_graph_and_variables(
            sess,
            [tf.saved_model.tag_constants.SERVING],
            signature_def_map=signatures,
            assets_collection=tf.get_collection(tf.GraphKeys.ASSET_FILEPATHS),
            main_op=tf.group(assign_filename_op),
        )
        builder.save()
    return export_dir


def build_types(export_dir: str) -> str:
    """Extra (not TF Serving's): one TF1 SavedModel whose signatures take each JSON type
    json_tensor.cc checks — ``ints`` (int64 n → 2n), ``int32s``, ``flags`` (bool → not),
    ``strings`` (string text → ``text`` and ``text_bytes``, the same bytes) and ``total`` (a
    0-d output: the sum of float x)."""
    builder = tf.saved_model.builder.SavedModelBuilder(export_dir)
    with tf.Session(graph=tf.Graph()) as sess:
        n = tf.placeholder(tf.int64, [None], name="n")
        m = tf.placeholder(tf.int32, [None], name="m")
        flag = tf.placeholder(tf.bool, [None], name="flag")
        text = tf.placeholder(tf.string, [None], name="text")
        x = tf.placeholder(tf.float32, [None], name="x")
        predict = consts.PREDICT_METHOD_NAME

        def sig(inputs, outputs):
            return sig_utils.build_signature_def(
                {k: build_info(v) for k, v in inputs.items()},
                {k: build_info(v) for k, v in outputs.items()},
                predict,
            )

        signatures = {
            "ints": sig({"n": n}, {"doubled": tf.multiply(n, 2, name="doubled")}),
            "int32s": sig({"m": m}, {"m_out": tf.identity(m, name="m_out")}),
            "flags": sig({"flag": flag}, {"negated": tf.logical_not(flag, name="negated")}),
            "strings": sig(
                {"text": text},
                {"text": tf.identity(text, "text_out"), "text_bytes": tf.identity(text)},
            ),
            "total": sig({"x": x}, {"total": tf.reduce_sum(x, name="total")}),
        }
        builder.add_meta_graph_and_variables(
            sess, [tf.saved_model.tag_constants.SERVING], signature_def_map=signatures
        )
        builder.save()
    return export_dir


def build_unsafe(export_dir: str) -> str:
    """Extra (not TF Serving's): a TF1 SavedModel whose ``serving_default`` (x → 2x) is safe
    and whose ``read`` signature reads a file the request names (ReadFile: not on the
    inference allowlist) — the server serves the first and refuses the second."""
    builder = tf.saved_model.builder.SavedModelBuilder(export_dir)
    with tf.Session(graph=tf.Graph()) as sess:
        x = tf.placeholder(tf.float32, [None], name="x")
        name = tf.placeholder(tf.string, [], name="filename")
        signatures = {
            consts.DEFAULT_SERVING_SIGNATURE_DEF_KEY: _predict(x, tf.multiply(x, 2.0, "y")),
            "read": sig_utils.build_signature_def(
                {"filename": build_info(name)},
                {"contents": build_info(tf.io.read_file(name))},
                consts.PREDICT_METHOD_NAME,
            ),
        }
        builder.add_meta_graph_and_variables(
            sess, [tf.saved_model.tag_constants.SERVING], signature_def_map=signatures
        )
        builder.save()
    return export_dir


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("out_base")
    p.add_argument(
        "--flavor",
        default="two_versions",
        choices=["two_versions", "current", "three", "types", "unsafe"],
    )
    p.add_argument("--versions", default=None, help="comma-separated, e.g. 123,124")
    p.add_argument("--b", type=float, default=None)
    groups, group = [], []
    for a in [*argv, "+"]:  # OUT_BASE [options] + OUT_BASE [options] ...
        if a == "+":
            groups.append(group)
            group = []
        else:
            group.append(a)
    for group in groups:
        args = p.parse_args(group)
        versions = args.versions or ("123,124" if args.flavor == "two_versions" else "123")
        for v in versions.split(","):
            d = os.path.join(args.out_base, f"{int(v):08d}")
            shutil.rmtree(d, ignore_errors=True)  # rebuilt, as a second run of the docs does
            if args.flavor in ("types", "unsafe"):
                (build_types if args.flavor == "types" else build_unsafe)(d)
            else:
                build(d, args.flavor, args.b)
            print("SavedModel", args.flavor, "at", d)


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
