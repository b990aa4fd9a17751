"""Greedy tokens of a three-node route on one device against `generate` on that device.

Three `sharedllm-node run --device DEVICE` processes (0:10, 10:20, 20:30) answer the fixed
prompts of bench/detection.py; `generate` answers them on the whole model on the same device,
in this process. Prints, per prompt, whether the tokens are the same and, where not, after
how many; exits 1 if fewer than ``--min-same`` of the answers agree.

    SHAREDLLM_HOME=.state .venv/bin/python bench/device_tokens.py --device cuda [--prompts 8]
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import torch
from detection import PROMPTS

from sharedllm.client.generate import TextGenerator
from sharedllm.model.client_model import ClientModel
from sharedllm.model.device import DEVICES, hardware_class, resolve_device
from sharedllm.model.importer import default_gguf
from sharedllm.model.store import ModelStore
from sharedllm.node.local import local_nodes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=DEVICES, default="auto")
    p.add_argument("--prompts", type=int, default=8)
    p.add_argument("--tokens", type=int, default=24)
    p.add_argument("--min-same", type=float, default=0.75, help="share of identical answers")
    args = p.parse_args()
    device = resolve_device(args.device)
    store = ModelStore()
    client = ClientModel(store, store.manifest(), device)
    prompts = PROMPTS[: args.prompts]
    model = _reference_model(device)
    expected = [_generate(model, client, p, args.tokens, device) for p in prompts]
    with local_nodes(["0:10", "10:20", "20:30"], "--device", str(device)) as nodes:
        urls = [n.pinned_url for n in nodes]
        got = [asyncio.run(_route(client, urls, p, args.tokens)) for p in prompts]
    same = 0
    print(f"\n{hardware_class(device)}: 3 nodes against generate, {args.tokens} greedy tokens")
    for prompt, a, b in zip(prompts, got, expected, strict=True):
        first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
        same += a == b
        print(f"  {'same' if a == b else f'differs at token {first}':<20} {prompt}")
    print(f"identical answers: {same}/{len(prompts)}")
    sys.exit(0 if same >= args.min_same * len(prompts) else 1)


def _reference_model(device):
    """The whole model from its GGUF file, on ``device``: ``generate``'s side."""
    from transformers import AutoModelForCausalLM

    gguf = default_gguf()
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
    )
    return model.eval().to(device)


def _generate(model, client: ClientModel, prompt: str, tokens: int, device) -> list[int]:
    ids = torch.tensor([client.prompt_ids(prompt)], device=device)
    with torch.inference_mode():
        out = model.generate(ids, max_new_tokens=tokens, do_sample=False)
    answer = out[0, ids.shape[1] :].tolist()
    eos = next((i for i, t in enumerate(answer) if t in client.eos_token_ids), None)
    return answer if eos is None else answer[: eos + 1]


async def _route(client: ClientModel, urls: list[str], prompt: str, tokens: int) -> list[int]:
    async with TextGenerator(urls, client_model=client) as gen:
        return [t async for t in gen.token_ids(client.prompt_ids(prompt), tokens)]


if __name__ == "__main__":
    main()
