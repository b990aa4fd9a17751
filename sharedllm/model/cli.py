"""`sharedllm model import|list|info`."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from sharedllm.cli_base import (
    CONTEXT,
    Args,
    Progress,
    argument,
    command,
    flag,
    format_size,
    json_flag,
    option,
)
from sharedllm.errors import ConfigError
from sharedllm.model.manifest import FLOAT32, PRECISIONS
from sharedllm.model.store import ModelStore


def register(group: click.Group) -> None:
    """Add ``model import|list|info``."""
    model = click.Group(
        "model", help="Import and inspect models in the local store.",
        short_help="Import and inspect models in the local store", context_settings=CONTEXT,
        no_args_is_help=True,
    )  # fmt: skip
    model.add_command(
        command(
            "import",
            "sharedllm.model.cli:import_models",
            "Shard a checkpoint into the store (default: SmolLM2-135M-Instruct).\n\n"
            "Converts checkpoints (.gguf files or folders with config.json) into "
            "content-addressed shards and manifests; prints each model id. On a terminal a "
            "bar shows the layers written, elsewhere a line per step.",
            [
                argument("path", nargs=-1, type=click.Path(path_type=Path)),
                option(
                    "--precision",
                    type=click.Choice(PRECISIONS),
                    default=FLOAT32,
                    help="the decoder layers' weights: float32, or int8 (torchao weight-only, "
                    "about a quarter of the bytes) as a model id of its own",
                ),
                flag("--set-default", help="make it the default model"),
                json_flag("print each result as one JSON object per line"),
            ],
        )
    )
    model.add_command(
        command("list", "sharedllm.model.cli:list_models", "List imported models.", [json_flag()])
    )
    model.add_command(
        command(
            "info",
            "sharedllm.model.cli:show_model",
            "Show a model's manifest (MODEL_ID default: the default model).",
            [argument("model_id", required=False), json_flag()],
        )
    )
    group.add_command(model)


def import_models(args: Args) -> int:
    from sharedllm.model.importer import import_model

    paths: list[Path | None] = list(args.path) or [None]
    if args.set_default and len(paths) > 1:
        raise ConfigError("--set-default takes one path: which import should be the default?")
    store = ModelStore()
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {message}", file=sys.stderr, flush=True)

    for path in paths:
        with LayerBar() as bar:
            result = import_model(
                store,
                path,
                precision=args.precision,
                set_default=True if args.set_default else None,
                progress=progress,
                layer_written=bar.written,
            )
        manifest = result.manifest
        if args.json:
            body = {
                "model_id": manifest.model_id,
                "name": manifest.name,
                "precision": manifest.dtype,
                "reused": result.reused,
            }
            print(json.dumps(body), flush=True)
        else:
            state = "already imported" if result.reused else "imported"
            print(f"{manifest.name} ({manifest.dtype}) {state}: {manifest.model_id}", flush=True)
    return 0


class LayerBar:
    """The layers an import writes: a bar on a terminal, a line per layer elsewhere."""

    def __init__(self) -> None:
        self.written_bytes = 0
        self._bar: Progress | None = None

    def written(self, done: int, total: int, size: int) -> None:
        if self._bar is None:
            self._bar = Progress("writing layers", total)
        self.written_bytes += size
        self._bar.step(done, f"{done}/{total} layers, {format_size(self.written_bytes)}")

    def __enter__(self) -> LayerBar:
        return self

    def __exit__(self, *_: object) -> None:
        if self._bar is not None:
            self._bar.close()


def list_models(args: Args) -> int:
    store = ModelStore()
    default = store.default_model_id()
    rows = []
    for model_id in store.model_ids():
        manifest = store.manifest(model_id)
        complete = all(store.has_shard(h) for h in manifest.shards())
        rows.append(
            {
                "model_id": model_id,
                "name": manifest.name,
                "layers": manifest.num_layers,
                "precision": manifest.dtype,
                "default": model_id == default,
                "complete": complete,
            }
        )
    if args.json:
        print(json.dumps(rows))
    elif not rows:
        print(f"no models in {store.root}; run `sharedllm model import`")
    for row in [] if args.json else rows:
        mark = "*" if row["default"] else " "
        note = "" if row["complete"] else "  (some shards missing)"
        print(
            f"{mark} {row['model_id']}  {row['name']}  {row['layers']} layers"
            f"  {row['precision']}{note}"
        )
    return 0


def show_model(args: Args) -> int:
    store = ModelStore()
    manifest = store.manifest(args.model_id)
    present = [store.has_shard(h) for h in manifest.layer_shards]
    if args.json:
        body = manifest.to_body() | {"model_id": manifest.model_id, "layers_present": present}
        print(json.dumps(body))
        return 0
    cfg = manifest.config
    print(f"model id     {manifest.model_id}")
    print(f"name         {manifest.name} ({', '.join(cfg.get('architectures') or ['?'])})")
    sizes = f"{manifest.num_layers}, hidden {manifest.hidden_size}, vocab {manifest.vocab_size}"
    print(f"layers       {sizes}")
    print(f"dtype        {manifest.dtype}")
    print(f"embed shard  {manifest.embed_shard}")
    print(f"head shard   {manifest.head_shard}")
    print(f"tokenizer    {manifest.tokenizer_shard}")
    for index, (shard, here) in enumerate(zip(manifest.layer_shards, present, strict=True)):
        print(f"layer {index:3d}    {shard}{'' if here else '  (missing)'}")
    return 0
