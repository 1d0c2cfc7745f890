"""``--optimize``: a leaner frozen graph for inference.

TensorFlow's ``optimize_for_inference``: strip unused and training-only nodes (Identity
chains, CheckNumerics), fuse decomposed batch norm and fold it into the preceding
convolution or matmul where safe; then keep only what the outputs need.
"""

from __future__ import annotations

from tfpersist.graph import signature
from tfpersist.tfapi.tfcompat import import_tf

tf = import_tf()


def optimize(graph_def, output_nodes: list[str]):
    from tensorflow.python.tools import optimize_for_inference_lib

    inputs = signature.placeholders(graph_def)
    dtypes = [n.attr["dtype"].type for name in inputs for n in graph_def.node if n.name == name]
    optimized = optimize_for_inference_lib.optimize_for_inference(
        graph_def, inputs, output_nodes, dtypes, toco_compatible=False
    )
    return tf.compat.v1.graph_util.extract_sub_graph(optimized, output_nodes)
