"""Write kserve-crds.json: the openAPIV3Schema of KServe's ServingRuntime and InferenceService
CRDs, cut down to what deploy/*.yaml can be checked against.

Source: kserve/kserve config/crd/full/serving.kserve.io_servingruntimes.yaml and
serving.kserve.io_inferenceservices.yaml (commit aaac4e2, Apache License 2.0, Copyright The
KServe Authors). The whole InferenceService schema is 2 MB (every pod field, inline); kept
here: along every path the examples use, each object's full list of property names (so an
unknown field is still caught), the type and constraints of each property, and descriptions
dropped; a property the examples do not use keeps only its type.

Usage: python deploy/schema/extract.py CRD_DIR   (run again when KServe or the examples change)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CRDS = ("serving.kserve.io_servingruntimes.yaml", "serving.kserve.io_inferenceservices.yaml")
CONSTRAINTS = (
    "type",
    "required",
    "format",
    "enum",
    "minimum",
    "maximum",
    "minItems",
    "maxItems",
    "pattern",
    "anyOf",
    "x-kubernetes-int-or-string",
    "x-kubernetes-preserve-unknown-fields",
)
SOURCE = (
    "Cut from the openAPIV3Schema of kserve/kserve@aaac4e2 config/crd/full/"
    "serving.kserve.io_{servingruntimes,inferenceservices}.yaml (Apache License 2.0, Copyright "
    "The KServe Authors) by deploy/schema/extract.py"
)


def _kept(schema: dict) -> dict:
    return {k: schema[k] for k in CONSTRAINTS if k in schema}


def prune(schema: dict, used: list) -> dict:
    """``schema`` cut to the values ``used`` at its place in the examples."""
    out = _kept(schema)
    if "properties" in schema:
        out["properties"] = {}
        for name, sub in schema["properties"].items():
            values = [v[name] for v in used if isinstance(v, dict) and name in v]
            out["properties"][name] = prune(sub, values) if values else _kept(sub)
    if "items" in schema:
        items = [i for v in used if isinstance(v, list) for i in v]
        out["items"] = prune(schema["items"], items) if items else _kept(schema["items"])
    if isinstance(schema.get("additionalProperties"), dict):
        values = [x for v in used if isinstance(v, dict) for x in v.values()]
        out["additionalProperties"] = prune(schema["additionalProperties"], values)
    return out


def main(crd_dir: str) -> None:
    examples = [d for p in sorted(HERE.parent.glob("*.yaml")) for d in yaml.safe_load_all(p.open())]
    found = {"$comment": SOURCE}
    for name in CRDS:
        crd = yaml.safe_load((Path(crd_dir) / name).read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            api = f"{group}/{version['name']}"
            used = [d for d in examples if (d["apiVersion"], d["kind"]) == (api, kind)]
            found[f"{api} {kind}"] = prune(version["schema"]["openAPIV3Schema"], used)
    text = json.dumps(found, indent=1, sort_keys=True) + "\n"
    (HERE / "kserve-crds.json").write_text(text)


if __name__ == "__main__":
    main(sys.argv[1])
