"""Device choice: ``auto`` takes the best this build reaches, a named device that is absent
fails at start in one line, and a span on an explicit device answers as on the default."""

from __future__ import annotations

import os
import subprocess

import pytest
import torch

from sharedllm.cli import sharedllm_main
from sharedllm.errors import ConfigError
from sharedllm.model.device import hardware_class, resolve_device
from sharedllm.model.span import SpanRunner
from sharedllm.processes import program

pytestmark = pytest.mark.model

CPU_ONLY = not torch.cuda.is_available()


def test_auto_and_cpu_resolve_here():
    assert resolve_device("cpu") == torch.device("cpu")
    assert hardware_class(resolve_device("cpu")) == "cpu"
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type in (expected, "mps")


@pytest.mark.skipif(not CPU_ONLY, reason="this machine has a CUDA GPU")
@pytest.mark.parametrize("name, says", [("cuda", "no CUDA"), ("mps", "MPS is not available")])
def test_an_absent_device_is_named(name, says):
    with pytest.raises(ConfigError, match=says) as refused:
        resolve_device(name)
    assert refused.value.code == "BAD_CONFIG" and f"--device {name}" in str(refused.value)
    with pytest.raises(ConfigError, match="not one of"):
        resolve_device("tpu")


def test_an_explicit_cpu_span_answers_as_the_default(store, manifest, client_model):
    hidden = client_model.embed(client_model.prompt_ids("Name a color."))
    default = SpanRunner(store, manifest, 0, 2)
    explicit = SpanRunner(store, manifest, 0, 2, torch.device("cpu"))
    assert torch.equal(default.prefill(hidden), explicit.prefill(hidden))
    assert explicit.device == torch.device("cpu")


@pytest.mark.skipif(not CPU_ONLY, reason="this machine has a CUDA GPU")
@pytest.mark.parametrize(
    "command",
    [
        ["sharedllm-node", "run", "--device", "cuda", "--layers", "0:2", "--no-host"],
        ["sharedllm-verifier", "run", "--device", "cuda", "--dev-account", "9"],
        ["sharedllm", "serve", "--device", "cuda", "--port", "0"],
    ],
    ids=["node", "verifier", "gateway"],
)
def test_the_programs_refuse_a_missing_device_in_one_line(command, model_home):
    done = subprocess.run(
        [*program(command[0]), *command[1:]],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "SHAREDLLM_HOME": str(model_home)},
    )
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode != 0
    assert lines[-1].startswith("error: [BAD_CONFIG] --device cuda: this torch has no CUDA")
    assert "ready" not in done.stdout


@pytest.mark.skipif(not CPU_ONLY, reason="this machine has a CUDA GPU")
def test_the_client_refuses_a_missing_device_before_it_plans(capsys):
    code = sharedllm_main(["generate", "hi", "--device", "cuda", "--nodes", "http://127.0.0.1:9"])
    assert code != 0
    assert "--device cuda: this torch has no CUDA" in capsys.readouterr().err
