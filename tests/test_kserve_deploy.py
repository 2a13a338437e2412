"""deploy/kserve.yaml: every variant checked field by field against KServe's own API models (the `kserve`
package's generated classes, the ones its Python SDK sends to a cluster) and its pod fields against the
Kubernetes API schemas; consistent with the Dockerfile, the service's settings and its V2 routes."""

from __future__ import annotations

import copy

import kserve.models
import kubernetes.client.models
import kubernetes_validate
import pytest
import yaml

from service.guards import OPEN_PATHS
from service.settings import Settings
from tests.conftest import ROOT
from tests.test_deploy import VERSIONS, dockerfile

MANIFEST = ROOT / "deploy" / "kserve.yaml"
VARIANTS = {"as shipped": (), "gpu": ("#gpu ",), "key": ("#key ",), "gpu + key": ("#gpu ", "#key ")}
SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float)}


def variant(markers: tuple[str, ...]) -> dict:
    text = MANIFEST.read_text()
    for marker in markers:
        assert marker in text
        text = text.replace(marker, "")  # = sed 's/MARKER //'
    (doc,) = yaml.safe_load_all(text)
    return doc


def problems(value, type_name: str, where: str) -> list[str]:
    """Every field of ``value`` that the API model ``type_name`` lacks, and every value of a wrong type."""
    if type_name.startswith(("list[", "List[")):
        if not isinstance(value, list):
            return [f"{where}: expected a list"]
        return [p for i, v in enumerate(value) for p in problems(v, type_name[5:-1], f"{where}[{i}]")]
    if type_name.startswith(("dict(", "Dict[")):
        if not isinstance(value, dict):
            return [f"{where}: expected a mapping"]
        inner = type_name[5:-1].split(", ", 1)[1]
        return [p for k, v in value.items() for p in problems(v, inner, f"{where}.{k}")]
    if type_name == "object":
        return []
    if type_name == "ResourceQuantity":  # "2", "1Gi" or a plain number
        ok = isinstance(value, (str, int, float)) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected a quantity, got {value!r}"]
    if type_name in ("datetime", "bytes"):
        type_name = "str"
    if type_name in SCALARS:
        ok = isinstance(value, SCALARS[type_name]) and (type_name == "bool" or not isinstance(value, bool))
        if type_name == "str" and "resources" in where and isinstance(value, int):
            ok = True  # older models type quantities as str; Kubernetes takes numbers too
        return [] if ok else [f"{where}: expected {type_name}, got {value!r}"]
    cls = getattr(kserve.models, type_name, None) or getattr(kubernetes.client.models, type_name)
    if not isinstance(value, dict):
        return [f"{where}: expected a {type_name} mapping"]
    attrs = {json_key: attr for attr, json_key in cls.attribute_map.items()}
    out = []
    for key, v in value.items():
        if key not in attrs:
            out.append(f"{where}.{key}: not a field of {type_name}")
        else:
            out += problems(v, cls.openapi_types[attrs[key]], f"{where}.{key}")
    return out


def check_inference_service(doc: dict) -> list[str]:
    found = [] if doc["apiVersion"] == "serving.kserve.io/v1beta1" else ["apiVersion"]
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    return found + problems(body, "V1beta1InferenceService", "InferenceService")


def pod_of(predictor: dict) -> dict:
    """The predictor's pod fields as a Pod (KServe's own fields — replicas, scaling, timeout — left out)."""
    pod_fields = set(kubernetes.client.models.V1PodSpec.attribute_map.values())
    spec = {k: v for k, v in predictor.items() if k in pod_fields}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ganserve"}, "spec": spec}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_is_a_valid_inference_service(name, version):
    doc = variant(VARIANTS[name])
    assert check_inference_service(doc) == []
    kubernetes_validate.validate(pod_of(doc["spec"]["predictor"]), version, strict=True)


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["spec"]["predictor"].update(minReplica=1),  # misspelt KServe field
        lambda d: d["spec"]["predictor"].update(minReplicas="one"),
        lambda d: d["spec"]["predictor"]["containers"][0].update(port=3000),  # misspelt container field
        lambda d: d["spec"].update(predicter={}),
    ],
)
def test_the_checks_catch_broken_manifests(break_it):
    doc = copy.deepcopy(variant(()))
    break_it(doc)
    pod_problem = False
    try:
        kubernetes_validate.validate(pod_of(doc["spec"]["predictor"]), VERSIONS[0], strict=True)
    except kubernetes_validate.ValidationError:
        pod_problem = True
    assert check_inference_service(doc) or pod_problem


def test_the_predictor_speaks_v2_on_the_images_port_with_the_services_settings():
    predictor = variant(())["spec"]["predictor"]
    (c,) = predictor["containers"]
    image = dockerfile()
    assert c["ports"][0]["containerPort"] == int(image["EXPOSE"])  # KServe routes to the first port
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = c[probe]["httpGet"]["path"]
        assert path.startswith("/v2/health/") and path in OPEN_PATHS  # answered without the key
    assert c["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    env = {e["name"]: e for e in c["env"]}
    assert predictor["timeout"] > float(env["GANSERVE_TIMEOUT"]["value"])
    assert env["GANSERVE_THREADS"]["valueFrom"]["resourceFieldRef"]["containerName"] == c["name"]
    assert predictor["securityContext"]["runAsUser"] == int(image["USER"].split(":")[0])
    for name in ("as shipped", "gpu + key"):
        for var in (e["name"] for e in variant(VARIANTS[name])["spec"]["predictor"]["containers"][0]["env"]):
            if var.startswith("GANSERVE_"):
                bogus = {var: "/nonexistent/not-a-value" if var.endswith("_FILE") else "not-a-number"}
                with pytest.raises(ValueError):  # read and checked by the service
                    Settings.from_env(bogus)
    gpu = variant(VARIANTS["gpu"])["spec"]["predictor"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
