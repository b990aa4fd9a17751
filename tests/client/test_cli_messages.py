"""What a new user reads when a node is unreachable or an address is not a URL: one line,
naming the peer and the cause."""

from __future__ import annotations

import pytest

from sharedllm.chain.devnet import free_port
from sharedllm.cli import sharedllm_main

pytestmark = pytest.mark.model


def test_no_route_names_every_node_tried_and_why(model_home, capsys) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    assert sharedllm_main(["generate", "hi", "--nodes", dead]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "[NO_ROUTE]" in err and dead in err and "cannot connect" in err
    assert "ClientConnectorError" not in err and "ConnectionKey" not in err


def test_a_node_address_that_is_not_a_url_is_shown_back(model_home, capsys) -> None:
    assert sharedllm_main(["generate", "hi", "--nodes", "notaurl"]) == 1
    assert "expected an http(s) URL, got 'notaurl'" in capsys.readouterr().err
