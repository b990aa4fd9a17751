"""The verifier judges a hop by the rule of its hardware pair: the class the node registered
on-chain, and its own. A CPU verifier checks a CPU node with the measured CPU threshold; a
node registered on a GPU class it has no measured rule against is left unjudged and said so,
never accused on a guessed threshold; a measured rule for a pair is used as it says."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from nacl.signing import SigningKey

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.registry import NodeConfig
from sharedllm.client.registry_directory import CHECKED_CLASSES, RegistryDirectory
from sharedllm.testing.calibrate import decode
from sharedllm.testing.cheats import CheatingRunner, CheatMode
from sharedllm.verifier.checker import RouteHop
from sharedllm.verifier.hardware_rules import RULES, Rule, rule_for
from sharedllm.verifier.inspection import Inspector, Runners
from sharedllm.verifier.ledger import VerifierLedger
from sharedllm.verifier.recompute import HopTranscript
from sharedllm.verifier.tolerance import TolerancePolicy

pytestmark = [pytest.mark.chain, pytest.mark.model]

CPU_NODE, GPU_NODE = dev_account(1), dev_account(2)


@pytest.fixture
def registered(chain, manifest):
    for account, hardware in ((CPU_NODE, "cpu"), (GPU_NODE, "cuda-sm86")):
        key = "0x" + bytes(SigningKey.generate().verify_key).hex()
        cfg = NodeConfig("https://127.0.0.1:9", key, manifest.model_id, 10, 20, 1, hardware)
        chain.registry.stake(account, 100 * WEI_PER_SHARE, cfg, chain.token)
    return chain


def _inspector(chain, store, tmp_path, rules=RULES) -> Inspector:
    ledger = VerifierLedger(tmp_path / "verifier.db")
    return Inspector(chain, dev_account(6), ledger, Runners(store), TolerancePolicy(), rules=rules)


def test_the_registry_says_each_nodes_class(registered):
    assert registered.registry.get_node(CPU_NODE.address).hardware == "cpu"
    assert registered.registry.get_node(GPU_NODE.address).hardware == "cuda-sm86"


def test_each_pair_gets_its_rule(registered, store, manifest, tmp_path):
    evidence = SimpleNamespace(model_id=manifest.model_id)
    inspector = _inspector(registered, store, tmp_path)
    assert inspector._policy_for(evidence, CPU_NODE.address) is inspector.policy
    why = inspector._policy_for(evidence, GPU_NODE.address)
    assert isinstance(why, str) and "cuda-sm86" in why and "unmeasured" in why
    measured = (Rule("cuda-*", "cpu", "*", 5e-2, "a test's measured pair"), *RULES)
    policy = _inspector(registered, store, tmp_path, measured)._policy_for(
        evidence, GPU_NODE.address
    )
    assert policy.threshold == 5e-2


def test_a_cheat_is_accused_on_a_cpu_and_left_unjudged_on_an_unmeasured_gpu_class(
    registered, store, manifest, span, hop_inputs, tmp_path
):
    inputs = hop_inputs[:8]
    cheat = CheatingRunner(span, CheatMode.BF16)
    transcript = HopTranscript.from_arrays(inputs, decode(cheat, inputs))
    inspector = _inspector(registered, store, tmp_path)
    far = registered.now() + 10_000

    def recompute(node: str, job_id: str):
        route = [RouteHop(node, b"\0" * 32, 10, 20)]
        evidence = SimpleNamespace(job_id=job_id, route=route, model_id=manifest.model_id)
        return inspector._recompute(evidence, [(0, transcript)], far)

    assert recompute(CPU_NODE.address, "0x" + "01" * 32) is not None  # caught
    assert recompute(GPU_NODE.address, "0x" + "02" * 32) is None  # not judged, not accused
    checks = inspector.ledger.checks("0x" + "02" * 32)
    assert [(c["ok"], c["reason"]) for c in checks] == [(0, "no_rule")]


def test_a_paid_route_keeps_to_the_classes_a_verifier_can_check(registered, manifest):
    """Proof of concept first: a node claiming a GPU class would go unjudged by every CPU
    verifier (above). So a paying client's directory lists only classes with a measured
    rule, and the node earns nothing by the claim; ``sharedllm nodes`` still shows it."""
    for hardware in CHECKED_CLASSES:
        assert rule_for(hardware, "cpu", manifest.dtype).threshold is not None
    for hardware in ("cuda-sm86", "mps"):
        assert hardware not in CHECKED_CLASSES
        assert rule_for(hardware, "cpu", manifest.dtype).threshold is None

    async def listed(**options) -> set[str]:
        directory = RegistryDirectory(registered, manifest.model_id, **options)
        return {n.address for n in await directory.records()}

    assert asyncio.run(listed()) == {CPU_NODE.address}
    assert asyncio.run(listed(hardware=None)) == {CPU_NODE.address, GPU_NODE.address}
