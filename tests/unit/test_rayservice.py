"""The KubeRay manifest deploys what ``serve deploy serve_config.yaml`` deploys, in a form
Serve itself accepts, on pods whose Ray starts with the front's switches and the settings
Secret, each pod with its HTTP cache in front of its own Serve front."""

from __future__ import annotations

from pathlib import Path

import yaml
from ray.serve.schema import ServeDeploySchema

from encore.cli import FRONT_ENVIRONMENT

ROOT = Path(__file__).resolve().parents[2]
SERVE_CONFIG = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
MANIFEST = list(yaml.safe_load_all((ROOT / "deploy" / "rayservice.yaml").read_text()))
[RAY_SERVICE] = [doc for doc in MANIFEST if doc["kind"] == "RayService"]
CLUSTER = RAY_SERVICE["spec"]["rayClusterConfig"]
POD_SPECS = {"head": CLUSTER["headGroupSpec"]["template"]["spec"]} | {
    group["groupName"]: group["template"]["spec"] for group in CLUSTER["workerGroupSpecs"]
}


def containers(pod: dict) -> dict[str, dict]:
    return {container["name"]: container for container in pod["containers"]}


def environment(container: dict) -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container.get("env", [])}


def settings_secret(container: dict) -> set[str]:
    return {source["secretRef"]["name"] for source in container.get("envFrom", []) if "secretRef" in source}


def test_serve_config_v2_is_serve_config_yaml_and_serve_accepts_it():
    served = yaml.safe_load(RAY_SERVICE["spec"]["serveConfigV2"])
    ServeDeploySchema.model_validate(served)
    assert served == SERVE_CONFIG


def test_serve_config_yaml_holds_no_setting():
    """Secrets and hosts come from the environment of ``ray start``, never from the file."""
    ServeDeploySchema.model_validate(SERVE_CONFIG)
    for app in SERVE_CONFIG["applications"]:
        assert "runtime_env" not in app
        assert set(app.get("args", {})) <= {"ingress_replicas"}


def test_every_pods_ray_starts_with_the_fronts_switches_and_the_settings():
    assert CLUSTER["rayVersion"] == __import__("ray").__version__
    for name, pod in POD_SPECS.items():
        [ray_container] = [c for c in pod["containers"] if c["name"].startswith("ray-")]
        assert environment(ray_container) == FRONT_ENVIRONMENT, name
        assert settings_secret(ray_container) == {"encore-settings"}, name


def test_every_pod_runs_its_cache_in_front_of_its_own_serve_front():
    http = SERVE_CONFIG["http_options"]
    assert http["host"] == "127.0.0.1", "only the cache is reachable from outside the pod"
    for name, pod in POD_SPECS.items():
        cache = containers(pod)["encore-cache"]
        assert cache["command"] == ["encore", "cache"], name
        assert environment(cache) == {"ENCORE_HOST": "0.0.0.0", "ENCORE_PORT": "8000", "ENCORE_SERVE_PORT": str(http["port"])}, name
        assert cache["ports"] == [{"name": "serve", "containerPort": 8000}], name
        assert settings_secret(cache) == {"encore-settings"}, name


def test_only_the_caches_and_the_kuberay_operator_reach_the_pods_from_outside():
    [policy] = [doc for doc in MANIFEST if doc["kind"] == "NetworkPolicy"]
    labels = CLUSTER["headGroupSpec"]["template"]["metadata"]["labels"]
    assert all(group["template"]["metadata"]["labels"] == labels for group in CLUSTER["workerGroupSpecs"])
    assert policy["spec"]["podSelector"]["matchLabels"] == labels
    open_ports = sorted(port["port"] for rule in policy["spec"]["ingress"] for port in rule.get("ports", []))
    assert open_ports == [8000, 8265]
    [dashboard_rule] = [rule for rule in policy["spec"]["ingress"] if {"port": 8265, "protocol": "TCP"} in rule.get("ports", [])]
    assert dashboard_rule["from"] == [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"app.kubernetes.io/name": "kuberay-operator"}}}]
