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


def test_every_node_of_the_cluster_starts_ray_with_the_fronts_switches():
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        [start] = [command for command in CLUSTER[key] if "ray start" in command]
        assert environment_of(start) == FRONT_ENVIRONMENT, key


def test_every_node_starts_its_cache_in_front_of_the_port_serve_deploys_its_front_on():
    http = yaml.safe_load((Path(__file__).resolve().parents[2] / "serve_config.yaml").read_text())["http_options"]
    assert http["host"] == "127.0.0.1", "only the cache is reachable from outside"
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        [cache] = [command for command in CLUSTER[key] if "encore cache" in command]
        settings = environment_of(cache.split("&&", 1)[1])
        assert settings["ENCORE_SERVE_PORT"] == str(http["port"]), key
        assert settings["ENCORE_HOST"] == "0.0.0.0", key
