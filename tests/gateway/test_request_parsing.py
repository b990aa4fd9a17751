"""OpenAI request bodies: what is accepted, and which field a refusal names."""

from __future__ import annotations

import pytest

from sharedllm.errors import ProtocolError
from sharedllm.gateway.answer import StopScanner
from sharedllm.gateway.openai_shapes import DEFAULT_MAX_TOKENS, parse_request

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def test_a_minimal_chat_request_gets_the_gateways_defaults() -> None:
    """OpenAI's defaults, except greedy sampling, as `sharedllm generate` (docs/GATEWAY.md)."""
    req = parse_request(CHAT, chat=True)
    assert req.messages == ({"role": "user", "content": "hi"},)
    assert (req.max_tokens, req.temperature, req.top_p, req.seed) == (
        DEFAULT_MAX_TOKENS, 0.0, 1.0, None,
    )  # fmt: skip
    assert (req.stop, req.stream, req.include_usage) == ((), False, False)


def test_every_supported_field_is_read() -> None:
    body = CHAT | {
        "max_completion_tokens": 9, "max_tokens": 99, "temperature": 0, "top_p": 0.5,
        "seed": 7, "stop": "\n", "n": 1, "stream": True,
        "stream_options": {"include_usage": True}, "user": "ignored", "metadata": {},
    }  # fmt: skip
    req = parse_request(body, chat=True)
    assert (req.max_tokens, req.temperature, req.top_p, req.seed) == (9, 0.0, 0.5, 7)
    assert (req.stop, req.stream, req.include_usage) == (("\n",), True, True)


def test_text_parts_and_developer_messages_are_plain_text() -> None:
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]
    body = {
        "model": "m",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": parts},
        ],
    }
    assert parse_request(body, chat=True).messages == (
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "ab"},
    )


def test_a_completion_takes_a_prompt_string_or_a_list_of_one() -> None:
    assert parse_request({"model": "m", "prompt": ["x"]}, chat=False).prompt == "x"
    assert parse_request({"model": "m", "prompt": "y", "max_tokens": 3}, chat=False).max_tokens == 3


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": CHAT["messages"]}, "model"),
        (CHAT | {"model": 5}, "model"),
        ({"model": "m", "messages": []}, "messages"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]"),
        ({"model": "m", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].role"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content"),
        (CHAT | {"max_tokens": "10"}, "max_tokens"),
        (CHAT | {"max_tokens": True}, "max_tokens"),
        (CHAT | {"max_tokens": 0}, "max_tokens"),
        (CHAT | {"max_completion_tokens": 10**9}, "max_completion_tokens"),
        (CHAT | {"temperature": "0"}, "temperature"),
        (CHAT | {"temperature": 3}, "temperature"),
        (CHAT | {"top_p": 1.5}, "top_p"),
        (CHAT | {"seed": -1}, "seed"),
        (CHAT | {"seed": 1.5}, "seed"),
        (CHAT | {"stop": ["a", 1]}, "stop"),
        (CHAT | {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        (CHAT | {"stop": [""]}, "stop"),
        (CHAT | {"n": 2}, "n"),
        (CHAT | {"stream": "yes"}, "stream"),
        (CHAT | {"stream_options": {"include_usage": True}}, "stream_options"),
        (CHAT | {"stream": True, "stream_options": {"include_usage": 1}},
         "stream_options.include_usage"),
        (CHAT | {"tools": [{"type": "function"}]}, "tools"),
        (CHAT | {"logprobs": True}, "logprobs"),
        ({"model": "m", "prompt": 5}, "prompt"),
        ({"model": "m", "prompt": ["a", "b"]}, "prompt"),
        ({"model": "m", "prompt": "x", "echo": True}, "echo"),
        ([], "body"),
    ],
)  # fmt: skip
def test_a_bad_field_is_named(body: object, field: str) -> None:
    chat = not (isinstance(body, dict) and "prompt" in body)
    with pytest.raises(ProtocolError) as bad:
        parse_request(body, chat=chat)
    assert bad.value.details["field"] == field
    assert bad.value.http_status == 400


def feed_all(scanner: StopScanner, pieces: list[str]) -> tuple[str, bool]:
    shown = []
    for piece in pieces:
        text, stopped = scanner.feed(piece)
        shown.append(text)
        if stopped:
            return "".join(shown), True
    return "".join(shown) + scanner.flush(), False


def test_a_stop_string_split_across_pieces_is_never_shown() -> None:
    assert feed_all(StopScanner(("END",)), ["The E", "N", "D of it"]) == ("The ", True)
    assert feed_all(StopScanner(("\n\n", "Paris")), ["It is Par", "is."]) == ("It is ", True)


def test_a_false_start_of_a_stop_string_is_shown_in_the_end() -> None:
    scanner = StopScanner(("END",))
    assert scanner.feed("an E") == ("an ", False)  # held back: it may begin "END"
    assert scanner.feed("xit") == ("Exit", False)
    assert feed_all(StopScanner(("END",)), ["trailing E"]) == ("trailing E", False)
