"""``sharedllm nodes`` shows a node that is moving: its old span and the one it goes to."""

from __future__ import annotations

import pytest

from sharedllm.chain.registry import NodeInfo as RegisteredNode
from sharedllm.client.network_text import network_lines
from sharedllm.client.network_view import NetworkView, NodeRow
from sharedllm.errors import ProtocolError
from sharedllm.peers.probe import Candidate
from sharedllm.protocol.node_info import NodeInfo, parse_node_info
from sharedllm.protocol.types import Address

MODEL = "0x" + "11" * 32


def _row(moving_to: tuple[int, int] | None) -> NodeRow:
    record = RegisteredNode(
        Address("0x" + "22" * 20), 10**20, "https://n:1", "0x" + "33" * 32, MODEL,
        0, 10, 1, "Active", 0,
    )  # fmt: skip
    info = NodeInfo("0.1.0", MODEL, 0, 10, 30, 576, 0, 4, 1000, 5.0, 1, moving_to=moving_to)
    return NodeRow(record, Candidate("https://n:1", info, 1.0), None)


def test_a_moving_node_is_shown_with_its_old_and_new_span():
    moving, staying = _row((20, 30)), _row(None)
    view = NetworkView(1, "0x" + "44" * 20, [moving, staying], [], probed=True)
    lines = network_lines(view)
    assert sum("moving 0:10 -> 20:30" in line for line in lines) == 1
    nodes = view.to_json()["nodes"]
    assert [n["movingTo"] for n in nodes] == [[20, 30], None]
    assert nodes[0]["hardware"] == "cpu" and any(" cpu " in line for line in lines)


def test_info_carries_moving_to_strictly():
    body = _row((20, 30)).candidate.info.to_json()
    assert parse_node_info(body).moving_to == (20, 30)
    assert parse_node_info(body | {"moving_to": None}).moving_to is None
    assert parse_node_info({k: v for k, v in body.items() if k != "moving_to"}).moving_to is None
    for bad in ([20], [30, 20], "20:30", [20, True]):
        with pytest.raises(ProtocolError, match="moving_to"):
            parse_node_info(body | {"moving_to": bad})
