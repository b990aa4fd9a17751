"""Model families served by real node processes: each tiny checkpoint is imported with
``sharedllm model import`` (Llama also in int8), split over three ``sharedllm-node run``
processes, and answers with ``generate``'s greedy tokens on the same weights. The families
with a layout or a quirk of their own run by default (and Llama in int8); the rest, which share
Llama's layout, in the slow tier."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import pytest
from links import call_json, pinned_ssl

from sharedllm.client.generate import TextGenerator
from sharedllm.model.client_model import ClientModel
from sharedllm.model.store import ModelStore
from sharedllm.node.local import local_nodes
from sharedllm.processes import program
from tests.model import families

pytestmark = pytest.mark.nodes

PROMPT = "What is the capital of France?"
NEW_TOKENS = 10


@pytest.fixture(scope="module")
def family_home(tmp_path_factory, client_model):
    """A home whose store holds every family, imported by one ``sharedllm model import``."""
    home = tmp_path_factory.mktemp("families-home")
    folder = tmp_path_factory.mktemp("families-checkpoints")
    paths = [families.make_checkpoint(folder, f, client_model.tokenizer) for f in families.FAMILIES]
    rows = _import(home, *map(str, paths))
    assert [r["name"] for r in rows] == list(families.FAMILIES)
    ids = {r["name"]: r["model_id"] for r in rows}
    [int8] = _import(home, str(paths[0]), "--precision", "int8")
    assert int8["precision"] == "int8" and int8["model_id"] != ids["llama"]
    ids["llama-int8"] = int8["model_id"]
    return home, ids, dict(zip(families.FAMILIES, paths, strict=True))


def _import(home, *args: str) -> list[dict]:
    done = subprocess.run(
        [*program("sharedllm"), "model", "import", *args, "--json"],
        env={**os.environ, "SHAREDLLM_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


def manifest_precision(family: str) -> str:
    return family.partition("-")[2] or "float32"


# The families with a layout or a quirk of their own; Gemma's embedding scale and Llama's
# float32 layers are served by real nodes elsewhere (the in-process family tests and every
# paid-network test), so they run here in the slow tier only.
DEFAULT_TIER = ("gemma2", "gpt2", "gpt_neox", "falcon")


def _params():
    for family in [*families.FAMILIES, "llama-int8"]:
        default = family in (*DEFAULT_TIER, "llama-int8")
        yield pytest.param(family, marks=() if default else (pytest.mark.slow,), id=family)


@pytest.mark.parametrize("family", list(_params()))
def test_three_node_processes_answer_as_generate(family, family_home):
    home, ids, paths = family_home
    store = ModelStore(home / "models")
    spans = [f"{a}:{b}" for a, b in families.SPANS]
    env = {"SHAREDLLM_HOME": str(home)}
    with local_nodes(spans, "--model", ids[family], env=env) as nodes:
        assert [n.span for n in nodes] == list(families.SPANS)
        status, info = call_json(f"{nodes[0].url}/info", pinned_ssl(nodes[0]))
        assert status == 200 and info["model_id"] == ids[family]
        assert (info["precision"], info["hardware"]) == (manifest_precision(family), "cpu")

        async def answer() -> tuple[list[int], list[int]]:
            async with TextGenerator(
                [n.url for n in nodes], store=store, model_id=ids[family]
            ) as gen:
                prompt = gen.model.prompt_ids(PROMPT)
                return prompt, [t async for t in gen.token_ids(prompt, NEW_TOKENS)]

        prompt, ours = asyncio.run(answer())
        checkpoint = family.partition("-")[0]
        precision = manifest_precision(family)
        expected, _ = families.reference(paths[checkpoint], prompt, NEW_TOKENS, precision)
        assert ours == expected[: len(ours)] and len(ours) == len(expected)

        if family == "gpt2":  # and as a user runs it, from the command line
            urls = ",".join(n.url for n in nodes)
            done = subprocess.run(
                [*program("sharedllm"), "generate", PROMPT, "--model", ids[family], "--nodes",
                 urls, "--max-tokens", str(NEW_TOKENS)],
                env={**os.environ, **env}, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-2000:]
            tokenizer = ClientModel(store, store.manifest(ids[family])).tokenizer
            text = tokenizer.decode(expected, skip_special_tokens=True).strip()
            assert text and done.stdout.strip() == text
