"""Which int8 is fastest on this CPU: one ``nn.Linear`` of the default model's shapes in
float32 (the baseline) against torchao's weight-only int8 (what ``--precision int8`` uses),
torchao's dynamic int8 (activations quantized too) and, when it is installed,
bitsandbytes' int8 and 4-bit NF4. Median of interleaved repeats, one thread, in
microseconds per call, with each kind's error relative to float32.

    .venv/bin/python bench/int8_linear.py [--repeats 5] [--calls 200]
    # bitsandbytes is not a dependency: `.venv/bin/pip install bitsandbytes==0.50.2` to add it
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

SHAPES = ((576, 576), (576, 1536), (1536, 576))  # SmolLM2-135M: attention, MLP up, MLP down
TOKENS = (1, 8, 64)


def _kinds() -> dict[str, Callable[[nn.Linear], nn.Module]]:
    for name in ("torchao", "torch.utils._pytree"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from torchao.quantization import (
        Int8DynamicActivationInt8WeightConfig,
        Int8WeightOnlyConfig,
        quantize_,
    )

    def torchao(config):
        def make(linear: nn.Linear) -> nn.Module:
            quantize_(linear, config)
            return linear

        return make

    kinds = {
        "float32": lambda linear: linear,
        "torchao int8 weight-only": torchao(Int8WeightOnlyConfig()),
        "torchao int8 dynamic": torchao(Int8DynamicActivationInt8WeightConfig()),
    }
    try:
        import bitsandbytes as bnb
    except ImportError:
        print("bitsandbytes is not installed: its row is left out")
        return kinds

    def bnb_int8(linear: nn.Linear) -> nn.Module:
        out = bnb.nn.Linear8bitLt(
            linear.in_features, linear.out_features, bias=False, has_fp16_weights=False
        )
        out.weight = bnb.nn.Int8Params(linear.weight.data, requires_grad=False)
        return out.to("cpu")

    def bnb_nf4(linear: nn.Linear) -> nn.Module:
        out = bnb.nn.Linear4bit(
            linear.in_features,
            linear.out_features,
            bias=False,
            compute_dtype=torch.float32,
            quant_type="nf4",
        )
        out.weight = bnb.nn.Params4bit(linear.weight.data, requires_grad=False, quant_type="nf4")
        return out.to("cpu")

    kinds["bitsandbytes int8"] = bnb_int8
    kinds["bitsandbytes nf4"] = bnb_nf4
    return kinds


def main() -> None:
    args = _parse()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    kinds = _kinds()
    print(f"\n{'shape':<11}{'tokens':>7}" + "".join(f"{k:>26}" for k in kinds))
    for rows, columns in SHAPES:
        base = nn.Linear(rows, columns, bias=False).eval().requires_grad_(False)
        nn.init.normal_(base.weight, std=0.02)
        modules = {k: make(copy.deepcopy(base)) for k, make in kinds.items()}
        for tokens in TOKENS:
            x = torch.randn(tokens, rows)
            with torch.inference_mode():
                reference = base(x)
                errors = {
                    k: float((m(x) - reference).norm() / reference.norm())
                    for k, m in modules.items()
                }
                times: dict[str, list[float]] = {k: [] for k in kinds}
                for _ in range(args.repeats):
                    for k, m in modules.items():
                        times[k].append(_time(m, x, args.calls))
            base_us = statistics.median(times["float32"])
            cells = []
            for k in kinds:
                us = statistics.median(times[k])
                note = "" if k == "float32" else f" ({us / base_us:.2f}x, {errors[k]:.0e})"
                cells.append(f"{us:.0f} us{note}")
            print(f"{rows}x{columns:<7}{tokens:>7}" + "".join(f"{c:>26}" for c in cells))
    print("\n(each cell: median µs per call; in brackets, time ÷ float32 and relative error)")


def _time(module: nn.Module, x: torch.Tensor, calls: int) -> float:
    module(x)
    began = time.perf_counter()
    for _ in range(calls):
        module(x)
    return (time.perf_counter() - began) / calls * 1e6


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--calls", type=int, default=200)
    return p.parse_args()


if __name__ == "__main__":
    main()
