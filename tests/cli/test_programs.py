"""The three programs through click's test runner: every command's help, one style for
options and errors, the documented exit codes, and completion for bash, zsh and fish."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from sharedllm.cli import sharedllm_program, verifier_program
from sharedllm.cli_base import EXIT_FAILED, EXIT_USAGE, Program, ready_line
from sharedllm.node.cli import main as node_main
from sharedllm.node.config import NodeConfig

BIN = Path(sys.executable).parent


def node_program() -> Program:
    from sharedllm.cli_base import program
    from sharedllm.node import cli, registry_cli

    group = program("sharedllm-node", "node")
    registry_cli.register(group)
    cli.register(group)
    return group


PROGRAMS = {
    "sharedllm": sharedllm_program,
    "sharedllm-node": node_program,
    "sharedllm-verifier": verifier_program,
}


def leaves(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield path + (name,)  # `serve` runs on its own too
            yield from leaves(command, path + (name,))
        else:
            yield path + (name,)


@pytest.fixture
def runner(sharedllm_home: Path) -> CliRunner:
    return CliRunner()


@pytest.mark.parametrize("prog", PROGRAMS)
def test_every_command_has_help_and_json_but_completion(runner: CliRunner, prog: str) -> None:
    group = PROGRAMS[prog]()
    commands = list(leaves(group))
    assert len(commands) >= 4
    for words in commands:
        result = runner.invoke(group, [*words, "--help"])
        assert result.exit_code == 0, (words, result.output)
        assert result.output.startswith(f"Usage: {prog} {' '.join(words)} "), words
        if words == ("completion",):
            continue
        assert "--json" in result.output, f"{prog} {' '.join(words)} has no --json"


def test_the_node_help_shows_the_defaults_the_node_runs_with(runner: CliRunner) -> None:
    """Each `run` option named like a NodeConfig field defaults to the field's value
    (`--device` is resolved, auto to a device, before it reaches the config)."""
    run = node_program().commands["run"]
    fields = {f.name: f.default for f in dataclasses.fields(NodeConfig)}
    checked = 0
    for param in run.params:
        name = None if param.name == "device" else param.name
        for key in (name, f"{name}_s"):
            if fields.get(key) is not None and isinstance(param.default, int | float | str):
                assert param.default == fields[key], (param.name, param.default, fields[key])
                checked += 1
    assert checked >= 10
    help_text = runner.invoke(node_program(), ["run", "--help"]).output
    assert "[default: 16]" in help_text and "[default: 30.0]" in help_text


def test_usage_errors_are_one_line_with_status_2(runner: CliRunner) -> None:
    group = sharedllm_program()
    for words, says in [
        (["nope"], "No such command 'nope'"),
        (["deposit"], "Missing argument 'AMOUNT'"),
        (["balance", "--keystore", "k.json", "--dev-account", "1"], "exclude each other"),
        (["generate", "hi", "--max-tokens", "many"], "'many' is not a valid integer"),
        (["withdraw", "later"], "'later' is not one of 'request', 'execute'"),
    ]:
        result = runner.invoke(group, words)
        assert result.exit_code == EXIT_USAGE, (words, result.output)
        assert result.stderr.count("\n") == 1, result.stderr
        assert result.stderr.startswith("error: [USAGE] ") and says in result.stderr


def test_a_failed_command_is_one_line_with_its_code_and_status_1(runner: CliRunner) -> None:
    result = runner.invoke(sharedllm_program(), ["balance", "--dev-account", "1"])
    assert result.exit_code == EXIT_FAILED
    assert result.stderr.startswith("error: [BAD_CONFIG] no deployment file at ")
    assert result.stderr.count("\n") == 1
    result = runner.invoke(sharedllm_program(), ["balance", "--dev-account", "1", "--json"])
    assert result.exit_code == EXIT_FAILED
    assert json.loads(result.stderr)["error"]["code"] == "BAD_CONFIG"


def test_a_program_without_a_command_shows_its_help_with_status_2(runner: CliRunner) -> None:
    result = runner.invoke(verifier_program(), [])
    assert result.exit_code == EXIT_USAGE
    assert "Commands:" in result.stderr and "stake" in result.stderr


def test_old_spellings_keep_working(runner: CliRunner) -> None:
    """Scripts written for the earlier command line: `--tls` (now the default) is still
    taken, though hidden; `--rebalance`/`--no-rebalance` and repeated `--peer` parse."""
    run = node_program().commands["run"]
    ctx = run.make_context(
        "run", ["--tls", "--no-rebalance", "--peer", "https://a:1", "--peer", "https://b:2"]
    )
    assert ctx.params["tls"] is True and ctx.params["rebalance"] is False
    assert ctx.params["peer"] == ("https://a:1", "https://b:2")
    assert "--tls" not in run.get_help(ctx)
    assert node_main(["run", "--tls", "--plaintext", "--no-host"]) == EXIT_FAILED


def test_ready_lines_read_the_same_as_text_and_json() -> None:
    fields = {"model": "0xab", "layers": "0:10", "via": None}
    assert (
        ready_line("https://n:1", fields, as_json=False)
        == "ready https://n:1 model=0xab layers=0:10"
    )
    assert json.loads(ready_line("h:1", fields, as_json=True, kind="relay")) == {
        "ready": "h:1", "kind": "relay", "model": "0xab", "layers": "0:10", "via": None,
    }  # fmt: skip


def complete(prog: str, words: str) -> list[str]:
    """What bash's completion function gets for the words typed so far."""
    var = "_" + prog.replace("-", "_").upper() + "_COMPLETE"
    env = {**os.environ, var: "bash_complete", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split()) - (0 if words.endswith(" ") else 1))}  # fmt: skip
    out = subprocess.run(
        [str(BIN / prog)], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout
    return [line.split(",", 1)[1] for line in out.splitlines()]


def test_completion_offers_commands_options_and_choices() -> None:
    assert complete("sharedllm", "sharedllm dep") == ["deposit"]
    assert "import" in complete("sharedllm", "sharedllm model ")
    assert set(complete("sharedllm-node", "sharedllm-node run --max-b")) == {
        "--max-batch", "--max-body-mb",
    }  # fmt: skip
    assert complete("sharedllm-node", "sharedllm-node run --device ") == [
        "auto", "cpu", "cuda", "mps",
    ]  # fmt: skip
    assert complete("sharedllm-verifier", "sharedllm-verifier st") == ["stake", "status"]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_each_shell_gets_a_script_to_install_in_one_line(runner: CliRunner, shell: str) -> None:
    result = runner.invoke(sharedllm_program(), ["completion", shell])
    assert result.exit_code == 0
    assert "_SHAREDLLM_COMPLETE" in result.output and f"{shell}_complete" in result.output
    install = {"bash": 'eval "$(sharedllm completion bash)"',
               "zsh": 'eval "$(sharedllm completion zsh)"',
               "fish": "sharedllm completion fish | source"}[shell]  # fmt: skip
    assert install in runner.invoke(sharedllm_program(), ["completion", "--help"]).output
