"""KServe's v2 protocol (the Open Inference Protocol) with Triton's own Python client: the
first row of a CSV sent to a served model over HTTP (binary tensor data, tritonclient's
default) and over gRPC, its answers printed.

usage: python examples/serving/v2_client.py MODEL_NAME CSV [HTTP_ADDRESS] [GRPC_ADDRESS]
       (addresses default to localhost:8501 and localhost:8500, `tfpersist serve`'s ports)

The input's name, datatype and width come from the model's v2 metadata; the CSV's first
columns are the features (a `label` column, if any, is left out).
"""

import csv
import sys

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import triton_to_np_dtype


def main(name: str, path: str, http_address="localhost:8501", grpc_address="localhost:8500"):
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header, row = next(reader), next(reader)
    features = [v for column, v in zip(header, row, strict=True) if column != "label"]

    http = httpclient.InferenceServerClient(http_address)
    meta = http.get_model_metadata(name)
    first = meta["inputs"][0]
    width = first["shape"][-1]
    x = np.array([features[:width]], dtype=triton_to_np_dtype(first["datatype"]))
    print(
        f"ready: {http.is_model_ready(name)}; input {first['name']} {first['datatype']}"
        f" {first['shape']}; outputs {', '.join(o['name'] for o in meta['outputs'])}"
    )

    given = httpclient.InferInput(first["name"], list(x.shape), first["datatype"])
    given.set_data_from_numpy(x)  # binary tensor data
    answer = http.infer(name, [given])
    for output in meta["outputs"]:
        print(f"HTTP {output['name']}: {np.round(answer.as_numpy(output['name']), 4).tolist()}")

    grpc = grpcclient.InferenceServerClient(grpc_address)
    given = grpcclient.InferInput(first["name"], list(x.shape), first["datatype"])
    given.set_data_from_numpy(x)
    wanted = [grpcclient.InferRequestedOutput(meta["outputs"][0]["name"])]
    answer = grpc.infer(name, [given], outputs=wanted)
    got, version = answer.as_numpy(wanted[0].name()), answer.get_response().model_version
    print(f"gRPC {wanted[0].name()}: {got.tolist()} (version {version})")


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__.split("\n\n")[1].strip())
    main(*sys.argv[1:])
