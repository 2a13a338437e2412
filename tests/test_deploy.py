"""deploy/serve.yaml: every variant valid against the Kubernetes API schemas, consistent with the Dockerfile
and with the service's settings."""

from __future__ import annotations

import copy
import re

import kubernetes_validate
import pytest
import yaml

from service.settings import Settings
from tests.conftest import ROOT

MANIFEST = ROOT / "deploy" / "serve.yaml"
# The oldest Kubernetes release still supported by the big providers' extended channels, and the newest the
# validator knows.
VERSIONS = ("1.29", kubernetes_validate.latest_version())
# The options the manifest's header documents, switched on exactly as its sed commands do.
VARIANTS = {"as shipped": (), "gpu": ("#gpu ",), "key": ("#key ",), "gpu + key": ("#gpu ", "#key ")}


def variant(markers: tuple[str, ...]) -> list[dict]:
    text = MANIFEST.read_text()
    for marker in markers:
        assert marker in text
        text = text.replace(marker, "")  # = sed 's/MARKER //' (one marker per line)
    return list(yaml.safe_load_all(text))


def by_kind(docs: list[dict]) -> dict[str, dict]:
    return {d["kind"]: d for d in docs}


def pod_spec(docs: list[dict]) -> dict:
    return by_kind(docs)["Deployment"]["spec"]["template"]["spec"]


def container(docs: list[dict]) -> dict:
    (c,) = pod_spec(docs)["containers"]
    return c


def env(docs: list[dict]) -> dict[str, dict]:
    return {e["name"]: e for e in container(docs)["env"]}


def dockerfile() -> dict[str, str]:
    """USER, EXPOSE, WORKDIR and every ENV of the Dockerfile's final stage."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    final = text[text.rindex("\nFROM ") :]
    out: dict[str, str] = {}
    for line in final.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word in ("USER", "EXPOSE", "WORKDIR"):
            out[word] = rest.strip()
        elif word == "ENV":
            out.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return out


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_is_valid_against_the_kubernetes_schemas(name, version):
    docs = variant(VARIANTS[name])
    assert sorted(by_kind(docs)) == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    ]
    for doc in docs:
        kubernetes_validate.validate(doc, version, strict=True)  # strict: unknown fields are errors too


@pytest.mark.parametrize(
    "break_it",
    [
        lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds="75s"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinesProbe={}),  # a typo
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].update(containerPort="http"),
        lambda d: d["spec"].pop("selector"),
    ],
)
def test_the_validator_catches_broken_manifests(break_it):
    deployment = copy.deepcopy(by_kind(variant(()))["Deployment"])
    break_it(deployment)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


def test_probes_grace_period_and_locked_down_container():
    docs = variant(())
    spec, c = pod_spec(docs), container(docs)
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
    named = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert c[probe]["httpGet"]["port"] in named
    pre_stop = c["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    timeout = float(env(docs)["GANSERVE_TIMEOUT"]["value"])
    # the longest request still finishes after the preStop pause, before the kubelet's SIGKILL
    assert spec["terminationGracePeriodSeconds"] > timeout + float(pre_stop[1])
    assert spec["securityContext"]["runAsNonRoot"] is True
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert "nvidia.com/gpu" not in c["resources"]["limits"]  # the GPU is an option, not the default


def test_the_manifest_matches_the_dockerfile():
    docs, image = variant(()), dockerfile()
    spec, c = pod_spec(docs), container(docs)
    uid, gid = image["USER"].split(":")
    assert (spec["securityContext"]["runAsUser"], spec["securityContext"]["runAsGroup"]) == (
        int(uid),
        int(gid),
    )
    port = {p["name"]: p["containerPort"] for p in c["ports"]}["http"]
    assert port == int(image["EXPOSE"]) == int(image["BENTOML_PORT"])
    assert c.get("command") is None and c.get("args") is None  # the image's CMD: bentoml serve, keep-alive 75
    # Everything the service writes at run time lies on a mounted emptyDir: the root file system is read-only.
    # Seen with strace on `bentoml serve` answering every route: BENTOML_HOME, /tmp (tempfile, BentoML's
    # sockets) and ONNX Runtime's device-id database under $XDG_CACHE_HOME (default ~/.cache).
    home, cache = env(docs)["BENTOML_HOME"]["value"], env(docs)["XDG_CACHE_HOME"]["value"]
    assert home == image["BENTOML_HOME"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    writable = [m["mountPath"] for m in c["volumeMounts"] if "emptyDir" in volumes[m["name"]]]
    for path in (home, cache, "/tmp"):
        assert any(path == w or path.startswith(w.rstrip("/") + "/") for w in writable), path
    # the models the image ships are the ones served (GANSERVE_MODELS_DIR is not redirected elsewhere)
    assert "GANSERVE_MODELS_DIR" not in env(docs) and image["GANSERVE_MODELS_DIR"] == "/app/models"


def test_every_setting_the_manifest_sets_is_one_the_service_reads():
    for name in ("as shipped", "gpu + key"):
        for var in env(variant(VARIANTS[name])):
            if not var.startswith("GANSERVE_"):
                continue
            bogus = {var: "/nonexistent/not-a-value" if var.endswith("_FILE") else "not-a-number"}
            with pytest.raises(ValueError):  # read and checked: a misspelt name would pass silently
                Settings.from_env(bogus)


def test_gpu_and_key_options():
    gpu = variant(VARIANTS["gpu"])
    assert container(gpu)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod_spec(gpu)[
        "tolerations"
    ]
    key = variant(VARIANTS["key"])
    path = env(key)["GANSERVE_API_KEY_FILE"]["value"]
    mount = next(m for m in container(key)["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
    volume = next(v for v in pod_spec(key)["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "ganserve-api-key" and mount["readOnly"] is True
    assert path.endswith("/key")  # the Secret's data key, as `kubectl create secret ... --from-file=key=...`


def test_service_hpa_and_budget_point_at_the_deployment():
    docs = by_kind(variant(()))
    deployment = docs["Deployment"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "replicas" not in deployment["spec"]  # the autoscaler owns it
    service = docs["Service"]["spec"]
    assert service["selector"].items() <= labels.items()
    assert service["ports"][0]["targetPort"] in {p["name"] for p in container([deployment])["ports"]}
    target = docs["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert container([deployment])["resources"]["requests"]["cpu"]  # utilization needs a request
    assert docs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
