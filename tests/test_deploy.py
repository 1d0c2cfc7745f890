"""deploy/: the KServe ServingRuntime and InferenceService examples, checked as far as this
machine can (no cluster): against the openAPIV3Schema of KServe's CRDs (deploy/schema/, cut
from KServe's own), strictly — a field the schema does not name is an error, where the API
server would silently drop it — and the runtime's command against tfpersist's own parser."""

from __future__ import annotations

import copy
import json

import jsonschema
import pytest
import yaml

from imports import ROOT

DEPLOY = ROOT / "deploy"


def strict(schema):
    """Every object that names its properties takes no others (unless Kubernetes keeps
    unknown fields there)."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema


@pytest.fixture(scope="module")
def schemas() -> dict:
    found = json.loads((DEPLOY / "schema" / "kserve-crds.json").read_text())
    return {k: strict(v) for k, v in found.items() if not k.startswith("$")}


def errors(schemas, document) -> list[str]:
    schema = schemas[f"{document['apiVersion']} {document['kind']}"]
    found = jsonschema.Draft7Validator(schema).iter_errors(document)
    return sorted(f"{'.'.join(map(str, e.path))}: {e.message}" for e in found)


def documents() -> dict:
    return {
        d["kind"]: d for p in sorted(DEPLOY.glob("*.yaml")) for d in yaml.safe_load_all(p.open())
    }


def test_the_examples_are_valid_kserve_resources(schemas):
    found = documents()
    assert set(found) == {"ServingRuntime", "InferenceService"}
    for document in found.values():
        assert errors(schemas, document) == [], document["kind"]
    model = found["InferenceService"]["spec"]["predictor"]["model"]
    assert model["runtime"] == found["ServingRuntime"]["metadata"]["name"]
    assert model["protocolVersion"] in found["ServingRuntime"]["spec"]["protocolVersions"]


def test_a_broken_runtime_is_caught(schemas):
    broken = copy.deepcopy(documents()["ServingRuntime"])
    container = broken["spec"]["containers"][0]
    del container["name"]
    container["readinessProbe"]["httpGet"]["port"] = [8080]
    container["unknownField"] = 1
    broken["spec"]["supportedModelFormats"][0]["priority"] = 0
    assert errors(schemas, broken) == sorted(
        [
            "spec.containers.0: 'name' is a required property",
            "spec.containers.0: Additional properties are not allowed ('unknownField' was "
            "unexpected)",
            "spec.containers.0.readinessProbe.httpGet.port: [8080] is not valid under any of the "
            "given schemas",
            "spec.supportedModelFormats.0.priority: 0 is less than the minimum of 1",
        ]
    )


def test_the_runtime_runs_tfpersist_serve_with_v2_probes_on_its_port():
    from tfpersist.cli import build_parser

    container = documents()["ServingRuntime"]["spec"]["containers"][0]
    assert container["command"] == ["tfpersist"]
    args = build_parser().parse_args([a.replace("{{.Name}}", "digits") for a in container["args"]])
    assert (args.command, args.name, args.host) == ("serve", "digits", "0.0.0.0")
    assert container["ports"][0]["containerPort"] == args.port
    probes = {k: container[k]["httpGet"] for k in ("readinessProbe", "livenessProbe")}
    assert probes == {
        "readinessProbe": {"path": "/v2/health/ready", "port": args.port},
        "livenessProbe": {"path": "/v2/health/live", "port": args.port},
    }
