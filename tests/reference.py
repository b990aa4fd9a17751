"""What several test folders compare against: the prompts, and transformers' own answers."""

from __future__ import annotations

import torch

from sharedllm.model.client_model import ClientModel

PROMPTS = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three prime numbers and explain why they are prime.",
    "How do I reverse a list in Python?",
    "Tell me a short story about a robot who learns to paint.",
)
NEW_TOKENS = 64


def reference_model():
    """The whole default model as transformers loads it from the original GGUF file."""
    from transformers import AutoModelForCausalLM

    from sharedllm.model.importer import default_gguf

    gguf = default_gguf()
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32, local_files_only=True
    )
    return model.eval()


def generate_tokens(model, client_model: ClientModel) -> dict[str, list[int]]:
    """Greedy tokens of `generate` per prompt, up to and including the EOS where it stops."""
    baseline = {}
    for prompt in PROMPTS:
        ids = client_model.prompt_ids(prompt)
        input_ids = torch.tensor([ids])
        with torch.inference_mode():
            out = model.generate(
                input_ids,
                attention_mask=torch.ones_like(input_ids),
                max_new_tokens=NEW_TOKENS,
                do_sample=False,
            )
        baseline[prompt] = out[0, len(ids) :].tolist()
    return baseline
