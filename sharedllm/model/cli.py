"""`sharedllm model import|list|info`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from sharedllm.errors import ConfigError
from sharedllm.model.manifest import FLOAT32, PRECISIONS
from sharedllm.model.store import ModelStore


def register(sub: argparse._SubParsersAction) -> None:
    """Add this part's commands."""
    model = sub.add_parser("model", help="import and inspect models in the local store")
    model_sub = model.add_subparsers(dest="model_command", metavar="ACTION", required=True)

    imp = model_sub.add_parser(
        "import",
        help="shard a checkpoint into the store (default: SmolLM2-135M-Instruct)",
        description="Convert checkpoints (.gguf files or folders with config.json) into "
        "content-addressed shards and manifests; prints each model id.",
    )
    imp.add_argument(
        "path", nargs="*", type=Path, help=".gguf files or checkpoint folders (one or more)"
    )
    imp.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=FLOAT32,
        help="the decoder layers' weights: float32 (default), or int8 (torchao weight-only, "
        "about a quarter of the bytes) as a model id of its own",
    )
    imp.add_argument("--set-default", action="store_true", help="make it the default model")
    imp.add_argument(
        "--json", action="store_true", help="print each result as one JSON object per line"
    )
    imp.set_defaults(func=_import)

    lst = model_sub.add_parser("list", help="list imported models")
    lst.add_argument("--json", action="store_true")
    lst.set_defaults(func=_list)

    info = model_sub.add_parser("info", help="show a model's manifest")
    info.add_argument("model_id", nargs="?", help="model id (default: the default model)")
    info.add_argument("--json", action="store_true")
    info.set_defaults(func=_info)


def _import(args: argparse.Namespace) -> int:
    from sharedllm.model.importer import import_model

    paths: list[Path | None] = list(args.path) or [None]
    if args.set_default and len(paths) > 1:
        raise ConfigError("--set-default takes one path: which import should be the default?")
    store = ModelStore()
    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {message}", file=sys.stderr, flush=True)

    for path in paths:
        result = import_model(
            store,
            path,
            precision=args.precision,
            set_default=True if args.set_default else None,
            progress=progress,
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


def _list(args: argparse.Namespace) -> int:
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


def _info(args: argparse.Namespace) -> int:
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
