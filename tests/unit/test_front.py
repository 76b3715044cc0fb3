"""The front's switches are written once (``encore.cli.FRONT_ENVIRONMENT``); the cluster
launcher's config must start Ray with every one of them, or a cluster would run another front."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from encore.cli import FRONT_ENVIRONMENT

CLUSTER = yaml.safe_load((Path(__file__).resolve().parents[2] / "cluster.yaml").read_text())


def environment_of(command: str) -> dict[str, str]:
    words = shlex.split(command)
    return dict(word.split("=", 1) for word in words[: next(i for i, w in enumerate(words) if "=" not in w)])


def step_of(command: str, program: str) -> str:
    """The ``&&`` step of a shell command that runs ``program``."""
    [step] = [part for part in command.split("&&") if program in part]
    return step


SETTINGS_SOURCED = "set -a && . ~/encore.env && set +a &&"


def test_every_node_of_the_cluster_starts_ray_with_the_fronts_switches_and_the_settings():
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        [start] = [command for command in CLUSTER[key] if "ray start" in command]
        assert environment_of(step_of(start, "ray start")) == FRONT_ENVIRONMENT, key
        assert start.startswith(SETTINGS_SOURCED), key
    assert CLUSTER["file_mounts"]["/home/encore/encore.env"] == "./encore.env"


def test_the_dashboard_listens_on_the_heads_loopback_only():
    [start] = [command for command in CLUSTER["head_start_ray_commands"] if "ray start" in command]
    assert "--dashboard-host=127.0.0.1" in shlex.split(start)


def test_every_node_starts_its_cache_in_front_of_the_port_serve_deploys_its_front_on():
    http = yaml.safe_load((Path(__file__).resolve().parents[2] / "serve_config.yaml").read_text())["http_options"]
    assert http["host"] == "127.0.0.1", "only the cache is reachable from outside"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        [cache] = [command for command in CLUSTER[key] if "encore cache" in command]
        assert SETTINGS_SOURCED in cache, key
        settings = environment_of(step_of(cache, "encore cache"))
        assert settings["ENCORE_SERVE_PORT"] == str(http["port"]), key
        assert settings["ENCORE_HOST"] == "0.0.0.0", key


def test_encore_serves_dashboard_listens_on_loopback_only():
    from encore.cli import dashboard_options
    from encore.settings import Settings

    assert dashboard_options(Settings(host="0.0.0.0"))["dashboard_host"] == "127.0.0.1"
    assert dashboard_options(Settings(dashboard=False)) == {"include_dashboard": False}
