"""export: the frozen model → a serving SavedModel, TFLite, ONNX and OpenCV (params.yaml
`export`), with export.json, the card every format shares.

usage: python stages/export.py FROZEN_PB PREPARED_DIR OUT_DIR
Each format is run by its own runtime on the test split next to the frozen graph; one whose
outputs are not close to it (export.tolerance + export.rtol × |value|) fails the stage. A
format that cannot hold this model (OpenCV and the cnn's image reshape), or whose own runtime
cannot load the file written for it, is left out, and the stage says why.
"""

import os

from tfpersist import safety, shipping
from tfpersist.pipeline import export as export_stage
from tfpersist.pipeline.params import ExportParams, ModelParams

from _stage import load_params, run


def main(argv: list[str]) -> None:
    frozen_pb, prepared, out = argv
    params = load_params()
    model, export = ModelParams.from_params(params), ExportParams.from_params(params)
    sig = shipping.Signature([model.input_node], model.output_nodes)
    trust = safety.Trust.from_env(os.environ)
    report = export_stage.ship_frozen(frozen_pb, prepared, out, sig, export, trust)
    for fmt, info in report["formats"].items():
        print(
            f"export: {fmt}: {info['path']}, {info['bytes']} bytes, "
            f"{shipping.difference(info, 'model')} on {report['rows']} test rows"
        )
    for fmt, why in report["left_out"].items():
        print(f"export: {fmt}: left out: {why}")
    if not export.formats:
        print("export: export.formats is empty; nothing shipped")


if __name__ == "__main__":
    run(main)
