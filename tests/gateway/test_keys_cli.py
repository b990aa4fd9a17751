"""``sharedllm serve keys``: what an operator sees, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sharedllm.cli import sharedllm_main
from sharedllm.gateway.api_keys import ApiKeys


def run(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    code = sharedllm_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_add_list_revoke(sharedllm_home: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, _ = run(capsys, "serve", "keys", "add", "alice", "--budget", "1.5", "--json")
    assert code == 0
    added = json.loads(out)
    assert added["budget"] == str(15 * 10**17) and added["api_key"].startswith("sk-sharedllm-")
    assert ApiKeys(sharedllm_home / "gateway" / "keys.db").authenticate(added["api_key"])

    code, out, _ = run(capsys, "serve", "keys", "list")
    assert code == 0 and "alice" in out and "1.5" in out and "active" in out
    code, out, _ = run(capsys, "serve", "keys", "revoke", "alice")
    assert code == 0 and "revoked" in out
    code, out, _ = run(capsys, "serve", "keys", "list", "--json")
    assert json.loads(out)["keys"][0]["revoked"] is True


def test_keys_file_option_and_clear_errors(
    sharedllm_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "elsewhere.db"
    assert run(capsys, "serve", "--keys", str(path), "keys", "add", "bob", "--budget", "2")[0] == 0
    assert ApiKeys(path).get("bob").budget == 2 * 10**18
    code, _, err = run(capsys, "serve", "keys", "add", "carol", "--budget", "lots")
    assert code == 1 and "budget" in err
    code, _, err = run(capsys, "serve", "keys", "add", "dave", "--budget", "0")
    assert code == 1 and "above 0 SHARE" in err  # a key that can never pay for anything
    code, _, err = run(capsys, "serve", "keys", "revoke", "nobody")
    assert code == 1 and "no API key named 'nobody'" in err


def test_serve_help_shows_keys_as_the_optional_subcommand_it_is(capsys) -> None:
    code, out, _ = run(capsys, "serve", "--help")
    assert code == 0
    assert out.startswith("Usage: sharedllm serve [OPTIONS] [COMMAND] [ARGS]...")
    assert "keys  Manage API keys and their budgets" in out
