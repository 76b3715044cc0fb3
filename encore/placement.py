"""Where the service's pieces run on a Ray cluster: seat blocks spread over the nodes, the
ingress replicas spread so that every node's front has a replica beside it.

The rules are plain functions of the node list (unit-tested); the Ray calls that read the
live nodes and build the scheduling strategy are the few lines below them.
"""

from __future__ import annotations

import math
from typing import Sequence


def block_node(block_index: int, node_ids: Sequence[str]) -> str:
    """The node a block is placed on: the blocks dealt round the nodes in a fixed order.

    Every replica that starts the blocks computes the same answer from the same nodes, so
    the block's first creator decides nothing by chance. Ray's default for an actor that
    asks for no CPU keeps it on its creator's node: every block would share one node.
    """
    if not node_ids:
        raise ValueError("no node to place a block on")
    return sorted(node_ids)[block_index % len(node_ids)]


def replicas_per_node(replicas: int, nodes: int, setting: int = 0) -> int:
    """At most this many ingress replicas on one node: the setting, or with 0 as even as
    the nodes allow (one machine takes them all, three nodes and three replicas one each)."""
    if setting:
        return setting
    return math.ceil(replicas / max(nodes, 1))


def alive_node_ids() -> list[str]:
    import ray

    return [node["NodeID"] for node in ray.nodes() if node["Alive"]]


def block_scheduling(block_index: int):
    """Soft affinity: a block whose node is lost is restarted by Ray on a node still alive
    (a hard one would leave it unschedulable, and the block's seats unsellable)."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id=block_node(block_index, alive_node_ids()), soft=True)


def ingress_replicas_per_node(replicas: int, setting: int) -> int:
    """For the ingress deployment, from the nodes alive when the app is deployed."""
    import ray

    nodes = len(alive_node_ids()) if ray.is_initialized() else 1
    return replicas_per_node(replicas, nodes, setting)
