"""Where blocks and replicas go: the rules, without a cluster (tests/cluster checks the real one)."""

from __future__ import annotations

from collections import Counter

import pytest

from encore.placement import block_node, replicas_per_node

NODES = ["c-node", "a-node", "b-node"]


def test_blocks_are_dealt_round_the_nodes_evenly():
    placed = [block_node(index, NODES) for index in range(15)]
    assert Counter(placed) == {"a-node": 5, "b-node": 5, "c-node": 5}
    assert placed[:3] == ["a-node", "b-node", "c-node"]


def test_every_replica_computes_the_same_node_whatever_order_it_hears_of_them():
    assert [block_node(i, NODES) for i in range(6)] == [block_node(i, list(reversed(NODES))) for i in range(6)]


def test_one_node_takes_every_block():
    assert {block_node(index, ["only"]) for index in range(15)} == {"only"}


def test_no_node_is_an_error_not_a_guess():
    with pytest.raises(ValueError):
        block_node(0, [])


@pytest.mark.parametrize(("replicas", "nodes", "expected"), [(2, 1, 2), (2, 2, 1), (2, 3, 1), (3, 3, 1), (5, 2, 3), (1, 0, 1)])
def test_replicas_per_node_is_as_even_as_the_nodes_allow(replicas, nodes, expected):
    assert replicas_per_node(replicas, nodes) == expected


def test_the_setting_overrides_the_even_spread():
    assert replicas_per_node(4, 4, setting=2) == 2
