"""The gateway through the official ``openai`` client: real anvil, three real paid node
processes, the real model and a real ``sharedllm serve`` process."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from sharedllm.chain.accounts import dev_account
from sharedllm.chain.amounts import WEI_PER_SHARE
from sharedllm.chain.market import JobRecord

pytestmark = [pytest.mark.chain, pytest.mark.model, pytest.mark.nodes]

QUESTION = "What is the capital of France?"
MAX_TOKENS = 12
SUBMIT_S = 60


def client(served, key: str = "main") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=served.gateway.api_base, api_key=served.secrets.get(key, key), max_retries=0
    )


def wait_submitted(served, job_ids: list[str]) -> list[JobRecord]:
    """The jobs' on-chain records once their last hops have submitted them."""
    statuses = ("Submitted", "Finalized", "Challenged")
    return [served.net.wait_for_job(j, *statuses, timeout=SUBMIT_S) for j in job_ids]


def job_ids(extension: dict) -> list[str]:
    return [job["job_id"] for job in extension["jobs"]]


def test_models_lists_the_model_id_and_a_friendly_alias(served) -> None:
    ids = {m.id for m in client(served).models.list()}
    assert ids == {"smollm2-135m-instruct", served.net.manifest.model_id}


def test_each_listed_model_can_be_retrieved(served) -> None:
    for listed in client(served).models.list():
        assert client(served).models.retrieve(listed.id).id == listed.id
    with pytest.raises(openai.NotFoundError):
        client(served).models.retrieve("gpt-4o")


def test_a_prompt_past_the_context_is_refused_at_once_and_nothing_is_reserved(served) -> None:
    spent, reserved = served.keys.get("main").spent, served.keys.get("main").reserved
    began = time.monotonic()
    with pytest.raises(openai.BadRequestError) as bad:
        client(served).chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": "The quick brown fox. " * 2000}],
            max_tokens=16,
        )
    assert time.monotonic() - began < 10  # no route is planned, no node asked
    assert bad.value.code == "context_length_exceeded"
    assert "8192" in bad.value.message
    key = served.keys.get("main")
    assert (key.spent, key.reserved) == (spent, reserved)


def test_a_long_paid_prompt_is_answered_and_the_key_pays_what_the_chain_charged(served) -> None:
    """About 3,000 prompt tokens: once failed with a frame header past 64 KiB, and the job was
    charged to the operator's escrow while the key was never billed."""
    spent = served.keys.get("main").spent
    reply = client(served).chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": "The quick brown fox. " * 500 + QUESTION}],
        max_tokens=4,
    )
    assert reply.usage.prompt_tokens > 2500
    ext = reply.model_extra["sharedllm"]
    (record,) = wait_submitted(served, job_ids(ext))
    assert record.cost == int(ext["cost_wei"]) > 0
    assert served.keys.get("main").spent - spent == int(ext["cost_wei"])


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"response_format": {"type": "json_object"}}, "response_format"),
        ({"response_format": {"type": "json_schema", "json_schema": {}}}, "response_format"),
    ],
    ids=["json-object", "json-schema"],
)
def test_what_the_gateway_cannot_honour_is_a_400_naming_the_field(served, extra, param) -> None:
    body = {"model": "smollm2-135m-instruct", "max_tokens": 4,
            "messages": [{"role": "user", "content": QUESTION}], **extra}  # fmt: skip
    with pytest.raises(openai.BadRequestError) as bad:
        client(served).chat.completions.create(**body)
    assert bad.value.param == param


def test_a_body_that_is_not_json_or_too_large_names_the_problem(served) -> None:
    import requests

    url = served.gateway.api_base + "/chat/completions"
    auth = {"Authorization": f"Bearer {served.secrets['main']}"}
    plain = requests.post(
        url, data=b'{"model": "x"}', headers={**auth, "Content-Type": "text/plain"}, timeout=30
    )
    assert plain.status_code == 400
    assert plain.json()["error"]["code"] == "unsupported_media_type"
    big = requests.post(
        url, data=b" " * (5 << 20), headers={**auth, "Content-Type": "application/json"},
        timeout=30,
    )  # fmt: skip
    # A lone surrogate is valid JSON (as other clients send it) but not text.
    lone = (
        b'{"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "\\ud800"}]}'
    )
    surrogate = requests.post(
        url, data=lone, headers={**auth, "Content-Type": "application/json"}, timeout=30
    )
    assert surrogate.status_code == 400
    assert surrogate.json()["error"]["param"] == "messages[0].content"
    assert big.status_code == 413
    assert big.json()["error"]["code"] == "body_too_large"
    assert str(4 << 20) in big.json()["error"]["message"]
    # Under the limit, a 2 MiB body is read and parsed (here it names an unknown model).
    medium = requests.post(
        url,
        data=b'{"model": "x", "messages": [{"role": "user", "content": "'
        + b"a" * (2 << 20)
        + b'"}]}',
        headers={**auth, "Content-Type": "application/json"},
        timeout=30,
    )
    assert medium.status_code == 404, medium.text[:200]
    assert medium.json()["error"]["code"] == "model_not_found"


def test_a_chat_answer_is_paid_by_the_operator_and_charged_to_the_key(served) -> None:
    market = served.net.chain.market
    escrow_before = market.escrow_of(served.operator)
    spent_before = served.keys.get("main").spent

    reply = client(served).chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    text = reply.choices[0].message.content
    assert "Paris" in text
    assert reply.usage.completion_tokens <= MAX_TOKENS
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens
    ext = reply.model_extra["sharedllm"]
    cost = int(ext["cost_wei"])
    assert cost > 0 and cost == sum(int(j["cost_wei"]) for j in ext["jobs"])
    assert [h["span"] for h in ext["jobs"][0]["route"]] == [[0, 10], [10, 20], [20, 30]]

    records = wait_submitted(served, job_ids(ext))
    assert sum(r.cost for r in records) == cost
    assert market.escrow_of(served.operator) == escrow_before - cost
    key = served.keys.get("main")
    assert key.spent == spent_before + cost and key.reserved == 0


def test_streamed_text_equals_the_plain_answer_and_the_network_client(served) -> None:
    messages = [{"role": "user", "content": QUESTION}]
    api = client(served)
    plain = api.chat.completions.create(
        model="smollm2-135m-instruct", messages=messages, max_tokens=MAX_TOKENS, temperature=0
    )
    chunks = list(
        api.chat.completions.create(
            model=served.net.manifest.model_id,
            messages=messages,
            max_tokens=MAX_TOKENS,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1
    assert streamed == plain.choices[0].message.content
    finish = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finish[-1] == plain.choices[0].finish_reason and set(finish[:-1]) == {None}
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == plain.usage.completion_tokens
    assert int(last.model_extra["sharedllm"]["cost_wei"]) > 0

    served.net.chain.market.deposit(dev_account(4), 1 * WEI_PER_SHARE, served.net.chain.token)
    direct, _ = served.net.generate(QUESTION, dev_account(4), max_tokens=MAX_TOKENS)
    assert streamed == direct
    wait_submitted(served, job_ids(plain.model_extra["sharedllm"]))
    wait_submitted(served, job_ids(last.model_extra["sharedllm"]))


def test_a_text_completion_has_no_chat_template(served) -> None:
    prompt = "The capital of France is"
    reply = client(served).completions.create(
        model="smollm2-135m-instruct", prompt=prompt, max_tokens=8, temperature=0
    )
    direct, _ = served.net.generate(prompt, dev_account(4), max_tokens=8, chat_template=False)
    assert reply.choices[0].text == direct
    assert reply.usage.completion_tokens == 8 and reply.choices[0].finish_reason == "length"
    wait_submitted(served, job_ids(reply.model_extra["sharedllm"]))


def test_a_stop_string_ends_the_answer_before_it(served) -> None:
    reply = client(served).chat.completions.create(
        model="smollm2-135m-instruct",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=MAX_TOKENS,
        temperature=0,
        stop=["Paris"],
    )
    assert reply.choices[0].finish_reason == "stop"
    assert "Paris" not in reply.choices[0].message.content
    wait_submitted(served, job_ids(reply.model_extra["sharedllm"]))


def test_an_unknown_key_is_refused(served) -> None:
    with pytest.raises(openai.AuthenticationError) as refused:
        client(served, "sk-sharedllm-000000000000-not-a-real-key-at-all").models.list()
    assert refused.value.status_code == 401


def test_a_key_past_its_budget_is_refused_and_nothing_moves(served) -> None:
    market = served.net.chain.market
    escrow = market.escrow_of(served.operator)
    submitted = len(market.submitted_jobs())
    with pytest.raises(openai.RateLimitError) as refused:
        client(served, "poor").chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": QUESTION}],
            max_tokens=MAX_TOKENS,
        )
    assert refused.value.code == "BUDGET_EXCEEDED"
    assert "budget" in refused.value.message
    assert "SHARE" in refused.value.message and "wei" not in refused.value.message
    time.sleep(2)  # a signed job would be submitted within this
    assert market.escrow_of(served.operator) == escrow
    assert len(market.submitted_jobs()) == submitted
    poor = served.keys.get("poor")
    assert (poor.spent, poor.reserved) == (0, 0)


def test_an_unknown_model_is_not_found(served) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client(served).chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "hi"}], max_tokens=4
        )
    assert missing.value.code == "model_not_found"
    assert "smollm2-135m-instruct" in missing.value.message


@pytest.mark.parametrize(
    ("field", "value"),
    [("temperature", "hot"), ("max_tokens", 0), ("n", 2), ("stop", [1])],
)
def test_a_bad_field_is_a_bad_request_naming_it(served, field: str, value: object) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client(served).chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": QUESTION}],
            **{"max_tokens": 4, field: value},
        )
    assert bad.value.param == field
    assert field in bad.value.message


def test_a_client_leaving_mid_stream_pays_only_for_what_was_served(served, client_model) -> None:
    market = served.net.chain.market
    before = {j.job_id for j in market.submitted_jobs()}
    spent = served.keys.get("main").spent
    max_tokens = 64
    messages = [{"role": "user", "content": "Write a long story about a lighthouse."}]
    stream = client(served).chat.completions.create(
        model="smollm2-135m-instruct",
        messages=messages,
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
    )
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()

    deadline = time.monotonic() + SUBMIT_S
    while not (new := [j for j in market.submitted_jobs() if j.job_id not in before]):
        assert time.monotonic() < deadline, "the abandoned job was never submitted"
        time.sleep(0.3)
    (job,) = new
    record = market.get_job(job.job_id)
    while served.keys.get("main").reserved:
        assert time.monotonic() < deadline, "the reservation was never settled"
        time.sleep(0.2)
    assert served.keys.get("main").spent == spent + record.cost
    # Generation stopped when the client left, far short of the prompt plus max_tokens.
    assert record.tokens_served < len(client_model.chat_ids(messages)) + max_tokens // 2
    assert client(served).models.list()  # the gateway carries on


def test_concurrent_requests_each_get_their_own_answer(served) -> None:
    questions = [QUESTION, "What is 2 + 2?"]
    api = client(served)

    def ask(question: str):
        return api.chat.completions.create(
            model="smollm2-135m-instruct",
            messages=[{"role": "user", "content": question}],
            max_tokens=8,
            temperature=0,
        )

    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(ask, questions))
    alone = [ask(q) for q in questions]
    assert [r.choices[0].message.content for r in together] == [
        r.choices[0].message.content for r in alone
    ]
    ids = {j for r in together + alone for j in job_ids(r.model_extra["sharedllm"])}
    assert len(ids) == 4  # one job per request
    wait_submitted(served, sorted(ids))


def test_serve_on_a_port_in_use_says_so(served) -> None:
    """Not '[CHAIN] RPC failed: [Errno 98] address already in use' as it once was."""
    import subprocess
    from urllib.parse import urlsplit

    from sharedllm.processes import program

    port = urlsplit(served.gateway.url).port
    result = subprocess.run(
        [*program("sharedllm"), "serve", "--port", str(port),
         "--rpc-url", served.net.devnet.rpc_url,
         "--deployment", str(served.net.devnet.deployment_path)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 1
    assert "PORT_IN_USE" in result.stderr and f":{port}" in result.stderr
    assert "RPC failed" not in result.stderr
