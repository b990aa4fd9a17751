"""``sharedllm nodes``, ``RegistryDirectory`` and registry coverage against a real anvil.

Node 5 answers ``/info`` as registered, node 2 answers with another span than it registered,
nodes 1 and 3 have nothing listening at their endpoints.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from registry_net import MODEL_ID, NODES, Registered, info_body, info_server, snapshot, stake_all

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import format_share
from sharedllm.chain.devnet import Devnet, free_port
from sharedllm.cli import sharedllm_main
from sharedllm.client.planner import RoutePlanner
from sharedllm.client.registry_directory import RegistryDirectory
from sharedllm.errors import RouteError
from sharedllm.peers.http import PeerClient
from sharedllm.placement.registry_gaps import (
    registry_coverage,
    span_for_new_node,
    worst_covered_span,
)
from sharedllm.protocol.session_msgs import Hop

pytestmark = pytest.mark.chain

NODE1, NODE2, NODE3, NODE5 = NODES
COVERAGE = [2] * 15 + [1] * 15  # nodes 1+5 over 0:10, 2+5 over 10:15, 2 over 15:20, 3 over 20:30


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registered]:
    deployment_file = tmp_path_factory.mktemp("net") / "deployment.json"
    with (
        info_server(info_body(NODE5)) as node5_url,
        info_server(info_body(NODE2, 10, 21)) as node2_url,
        Devnet(deployment_path=deployment_file) as devnet,
    ):
        endpoints = {
            1: f"http://127.0.0.1:{free_port()}",
            2: node2_url,
            3: f"http://127.0.0.1:{free_port()}",
            5: node5_url + "/",
        }
        yield stake_all(devnet, deployment_file, endpoints)


@pytest.fixture
def net(registered: Registered, sharedllm_home: Path) -> Iterator[Registered]:
    with snapshot(registered.chain):
        yield registered


def nodes_json(net: Registered, capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    code = sharedllm_main(["nodes", *net.cli(), "--json", *extra])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_nodes_lists_every_staked_node_with_its_registration(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    shown = nodes_json(net, capsys, "--timeout", "1")
    by_address = {n["address"]: n for n in shown["nodes"]}
    assert len(by_address) == len(NODES)
    for spec in NODES:
        node = by_address[dev_account(spec.account).address]
        assert node["span"] == [spec.start, spec.end]
        assert int(node["pricePerToken"]) == spec.price
        assert int(node["stake"]) == spec.stake
        assert node["status"] == "Active"
        assert node["endpoint"] == net.endpoints[spec.account]
        assert node["pubkey"] == spec.pubkey
    answers = {a: n["answers"] for a, n in by_address.items()}
    assert answers == {dev_account(s.account).address: s.account in (2, 5) for s in NODES}
    assert by_address[dev_account(5).address]["problem"] is None
    assert "10:21" in by_address[dev_account(2).address]["problem"]

    (model,) = shown["models"]
    assert model["modelId"] == MODEL_ID and model["numLayers"] == 30
    assert model["coverage"] == COVERAGE
    assert model["gaps"] == []
    # Only node 5 answers as registered: layers 15..29 have nobody to serve them right now.
    assert model["answeringCoverage"] == [1] * 15 + [0] * 15
    assert model["answeringGaps"] == [[15, 30]]


def test_nodes_text_shows_the_table_and_a_layer_strip(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    code = sharedllm_main(["nodes", *net.cli(), "--timeout", "1"])
    out = capsys.readouterr().out
    assert code == 0
    for spec in NODES:
        assert dev_account(spec.account).address in out
        assert f"{format_share(spec.stake)} SHARE" in out
    assert f"{format_share(NODE5.price)} SHARE" in out  # 0.0000005 per token per layer
    assert "registered   222222222222222111111111111111" in out
    assert "answering    111111111111111..............." in out
    assert "  " + "#" * 15 + "." * 15 + "  0:15" in out  # node 5, answering
    assert "x" * 10 + "." * 10 + "  10:20  differs" in out  # node 2 answers, but not as registered
    assert "nobody answering serves 15:30" in out


def test_a_node_that_unstakes_disappears_and_leaves_a_gap(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    net.chain.registry.request_unstake(dev_account(NODE3.account))
    shown = nodes_json(net, capsys, "--timeout", "1")
    addresses = {n["address"] for n in shown["nodes"]}
    assert dev_account(NODE3.account).address not in addresses
    assert len(addresses) == len(NODES) - 1
    (model,) = shown["models"]
    assert (model["numLayers"], model["numLayersFrom"]) == (30, "info")  # node 5's /info
    assert model["coverage"] == [2] * 15 + [1] * 5 + [0] * 10
    assert model["gaps"] == [[20, 30]]

    # Reading the chain only, the layer count is a lower bound unless it is given.
    shown = nodes_json(net, capsys, "--no-probe")
    (model,) = shown["models"]
    assert (model["numLayers"], model["numLayersFrom"]) == (20, "registry")
    assert shown["probed"] is False and model["answeringCoverage"] is None
    code = sharedllm_main(["nodes", *net.cli(), "--no-probe", "--layers", "30"])
    out = capsys.readouterr().out
    assert code == 0 and "gaps: 20:30 (no route covers the model)" in out


def test_nodes_filters_by_model_and_reports_an_empty_registry(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    other = "0x" + "77" * 32
    assert nodes_json(net, capsys, "--no-probe", "--model", other)["nodes"] == []
    code = sharedllm_main(["nodes", *net.cli(), "--model", other])
    assert code == 0 and "no active nodes" in capsys.readouterr().out
    code = sharedllm_main(["nodes", *net.cli(), "--model", "0x12"])
    assert code == 1 and "BAD_CONFIG" in capsys.readouterr().err
    code = sharedllm_main(["nodes", *net.cli(), "--timeout", "-1"])
    assert code == 1 and "--timeout" in capsys.readouterr().err


def test_registry_directory_lists_endpoints_and_maps_them_back(net: Registered) -> None:
    async def main() -> None:
        directory = RegistryDirectory(net.chain, MODEL_ID)
        endpoints = await directory.endpoints()
        # Normalised as the planner spells URLs: node 5 registered a trailing slash.
        assert sorted(endpoints) == sorted(u.rstrip("/") for u in net.endpoints.values())
        node5 = await directory.record_for(net.endpoints[5].rstrip("/"))
        assert node5.address == dev_account(5).address and node5.pubkey == NODE5.pubkey
        route = [Hop(net.endpoints[s.account], s.start, s.end) for s in (NODE1, NODE2, NODE3)]
        hops = await directory.priced_route(route)
        assert [h.address for h in hops] == [dev_account(a).address for a in (1, 2, 3)]
        assert [h.price_per_token for h in hops] == [s.price for s in (NODE1, NODE2, NODE3)]
        assert [h.pubkey for h in hops] == [s.pubkey for s in (NODE1, NODE2, NODE3)]
        with pytest.raises(RouteError) as err:  # node 2 as its /info claims, not as registered
            await directory.priced_route([Hop(net.endpoints[2], 10, 21)])
        assert err.value.code == "SpanMismatch"
        with pytest.raises(RouteError) as err:
            await directory.record_for(net.endpoints[5], public_key="0x" + "ee" * 32)
        assert err.value.code == "UNKNOWN_NODE"
        assert await RegistryDirectory(net.chain, "0x" + "77" * 32).endpoints() == []

        # It plugs into the route planner: every registry node that answers /info is a candidate.
        async with PeerClient() as peers:
            found = await RoutePlanner(directory, peers).candidates(MODEL_ID)
        assert sorted(c.url for c in found) == sorted(net.endpoints[a].rstrip("/") for a in (2, 5))

        net.chain.registry.request_unstake(dev_account(NODE1.account))
        assert net.endpoints[1] in await directory.endpoints()  # still the cached snapshot
        fresh = [r.address for r in await directory.records(refresh=True)]
        assert dev_account(NODE1.account).address not in fresh

    asyncio.run(main())


def test_registry_gaps_pick_the_worst_covered_span(net: Registered) -> None:
    records = net.chain.registry.active_nodes()
    coverage = registry_coverage(records, MODEL_ID, 30)
    assert coverage == COVERAGE
    assert worst_covered_span(coverage, 10) == (15, 25)  # total 10, tied with 20:30: earliest
    assert span_for_new_node(records, MODEL_ID, 30, 10) == (15, 25)

    net.chain.registry.request_unstake(dev_account(NODE3.account))
    coverage = registry_coverage(net.chain.registry.active_nodes(), MODEL_ID, 30)
    assert worst_covered_span(coverage, 10) == (20, 30)
    assert worst_covered_span(coverage, 4) == (20, 24)


def test_a_span_past_the_model_is_flagged_and_a_dead_node_is_named_plainly(
    net: Registered, capsys: pytest.CaptureFixture[str]
) -> None:
    """The registry accepts 10:40 (it cannot know the model has 30 layers); `nodes` says so."""
    from sharedllm.chain.amounts import WEI_PER_SHARE
    from sharedllm.chain.registry import NodeConfig

    cfg = NodeConfig(f"http://127.0.0.1:{free_port()}", "0x" + "06" * 32, MODEL_ID, 10, 40, 10**12)
    net.chain.registry.stake(dev_account(6), 100 * WEI_PER_SHARE, cfg, net.chain.token)
    shown = nodes_json(net, capsys, "--timeout", "1")
    (model,) = shown["models"]
    assert model["numLayers"] == 30  # what the answering nodes serve, not the bad span's end
    by_address = {n["address"]: n for n in shown["nodes"]}
    assert "past the model's 30 layers" in by_address[dev_account(6).address]["problem"]
    dead = by_address[dev_account(1).address]["problem"]
    assert "cannot connect" in dead and "ClientConnectorError" not in dead
