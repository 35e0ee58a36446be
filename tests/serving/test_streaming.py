"""Streamed answers (`"stream": true`): the embedded server's server-sent events as the official openai client and
ModelClient read them, the engine's pieces (no stop string, no half character), and `ft ask --stream`."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from typer.testing import CliRunner

from serving.client import ModelClient, ModelServerError, ModelServerUnavailable
from tests.serving.conftest import BASE
from tests.serving.contract import sse_events
from tests.serving.test_model_server import QUESTION, call, chat, until
from tests.serving.test_vllm import free_port

ASK = {"model": BASE, "messages": QUESTION, "max_tokens": 24, "temperature": 0, "ignore_eos": True}


def joined(events: list) -> str:
    return "".join(e["choices"][0]["delta"].get("content", "") for e in events
                   if isinstance(e, dict) and e.get("choices"))


def openai_client(url: str, api_key: str = "unused"):
    import openai

    return openai.AsyncOpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=60)


# ---- the engine's pieces ------------------------------------------------------------------------------------------

def test_settled_text_holds_back_what_a_later_token_can_change():
    from serving.pieces import settled

    assert settled("Hello\nQue", ["\nQuestion:"]) == "Hello"  # could be the start of the stop string
    assert settled("Hello\nQ", ["\nQuestion:", "\nQ:"]) == "Hello"
    assert settled("Hello\nQx", ["\nQuestion:", "\nQ:"]) == "Hello\nQx"
    assert settled("ab \ufffd", []) == "ab"  # an incomplete character, and the space before it
    assert settled("a\ufffdb", []) == "a\ufffdb"  # not at the end: it will not change any more
    assert settled("", ["stop"]) == ""


def test_pieces_never_split_a_character_and_join_to_the_text(tiny):
    """Byte-level tokens cut "ü", "—" and "✅" into bytes: no piece carries half of one (U+FFFD)."""
    import torch
    from transformers import AutoTokenizer

    from serving.pieces import TextPieces

    tokenizer = AutoTokenizer.from_pretrained(tiny["base"])
    text = "Grüße — the trial lasts 21 días ✅ ok"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # the rare characters are several tokens each
    pieces: list[str] = []
    streamer = TextPieces(lambda new: tokenizer.decode(new, skip_special_tokens=True), pieces.append, [])
    streamer.put(torch.tensor([[1, 2, 3]]))  # the prompt: not the answer
    for token in ids:
        streamer.put(torch.tensor([token]))
    streamed_before_the_end = len(pieces)
    streamer.finish(tokenizer.decode(ids, skip_special_tokens=True))
    assert "".join(pieces) == text and streamed_before_the_end > 5
    assert not [p for p in pieces if "\ufffd" in p], pieces


# ---- the embedded server's events (the official openai client's stream: test_model_server.py) ----------------

async def test_the_events_are_vllms(server):
    status, ctype, events = await sse_events(server.url, {**ASK, "stream": True,
                                                          "stream_options": {"include_usage": True}})
    assert status == 200 and ctype == "text/event-stream; charset=utf-8"
    first, *middle, last, usage, done = events
    assert done == "[DONE]"
    head = {k: first[k] for k in ("id", "object", "created", "model")}
    assert head["object"] == "chat.completion.chunk" and head["id"].startswith("chatcmpl-") and head["model"] == BASE
    assert first["choices"] == [{"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
                                 "finish_reason": None}]
    assert middle and all(e["choices"][0].keys() == {"index", "delta", "logprobs", "finish_reason"}
                          and e["choices"][0]["delta"].keys() == {"content"} for e in middle)
    assert last["choices"] == [{"index": 0, "delta": {"content": ""}, "logprobs": None, "finish_reason": "length",
                                "stop_reason": None}]
    assert usage == {**head, "choices": [], "usage": {"prompt_tokens": usage["usage"]["prompt_tokens"],
                                                      "completion_tokens": 24,
                                                      "total_tokens": usage["usage"]["prompt_tokens"] + 24}}
    assert all({k: e[k] for k in head} == head for e in events[:-1])
    _, _, whole = await chat(server.url, BASE, max_tokens=24, ignore_eos=True)
    assert joined(events) == whole["choices"][0]["message"]["content"]


async def test_a_stop_string_is_never_streamed(server):
    _, _, full = await chat(server.url, BASE, max_tokens=48, ignore_eos=True)
    text = full["choices"][0]["message"]["content"]
    middle = len(text) // 2
    at = next(i for i in range(middle, len(text) - 3) if "\ufffd" not in text[i:i + 3])
    stop = text[at:at + 3]
    _, _, whole = await chat(server.url, BASE, max_tokens=48, ignore_eos=True, stop=[stop, "never said"])
    _, _, events = await sse_events(server.url, {**ASK, "max_tokens": 48, "stop": [stop, "never said"],
                                                 "stream": True})
    assert joined(events) == whole["choices"][0]["message"]["content"] == text[:text.index(stop)]
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


async def test_bad_stream_requests_are_refused_before_the_stream_as_vllm_refuses_them(server):
    import openai

    client = openai_client(server.url)
    ask = {"model": BASE, "messages": QUESTION, "max_tokens": 4}
    try:
        for extra, field in (({"stream": True, "stream_options": {"include_usage": "yes"}}, "include_usage"),
                             ({"stream": True, "stream_options": "usage"}, "stream_options"),
                             ({"stream_options": {"include_usage": True}}, "`stream=True`")):
            with pytest.raises(openai.BadRequestError) as err:
                await client.chat.completions.create(**ask, **extra)
            assert err.value.status_code == 400 and field in err.value.message
        with pytest.raises(openai.NotFoundError) as err:
            await client.chat.completions.create(**{**ask, "model": "support-v9"}, stream=True)
        assert "support-v9" in err.value.message
        with pytest.raises(openai.BadRequestError) as err:  # found on the model thread, still before the stream
            await client.chat.completions.create(**{**ask, "max_tokens": 5000}, stream=True)
        assert "maximum context length" in err.value.message
    finally:
        await client.close()
    # stream_options without stream, but empty or null: vLLM lets them through, and so does this server.
    for options in ({}, None):
        status, _, _ = await chat(server.url, BASE, max_tokens=2, stream_options=options)
        assert status == 200


async def test_a_client_that_leaves_mid_stream_frees_the_model_thread(server):
    client = openai_client(server.url)
    try:
        stream = await client.chat.completions.create(model=BASE, messages=QUESTION, max_tokens=1500,
                                                      extra_body={"ignore_eos": True}, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        assert server.worker.running == 1
        await stream.close()
        started = time.perf_counter()
        await until(lambda: server.worker.running == 0, timeout_s=3)
        reply = await client.chat.completions.create(model=BASE, messages=QUESTION, max_tokens=5)
        assert reply.choices[0].message.content is not None and time.perf_counter() - started < 3
    finally:
        await client.close()
    _, _, metrics = await call("GET", server.url + "/metrics")
    assert 'ftserve_requests_total{endpoint="/v1/chat/completions",status="499"} 1.0' in metrics
    assert "ftserve_generation_seconds_count 1.0" in metrics  # the answered one only, as without stream


async def test_an_error_after_the_stream_began_is_an_event_then_done(server, monkeypatch):
    import openai

    def fails_midway(*args, on_text=None, **kwargs):
        on_text("partial")
        raise RuntimeError("the model fell over")

    monkeypatch.setattr(server.engine, "generate", fails_midway)
    status, _, events = await sse_events(server.url, {**ASK, "stream": True})
    assert status == 200 and [e["choices"][0]["delta"] for e in events[:2]] == \
        [{"role": "assistant", "content": ""}, {"content": "partial"}]
    assert events[2:] == [{"error": {"message": "RuntimeError: the model fell over", "type": "InternalServerError",
                                     "param": None, "code": 500}}, "[DONE]"]

    pieces: list[str] = []

    async def collect(piece: str) -> None:
        pieces.append(piece)

    client = ModelClient(server.url)
    try:
        with pytest.raises(ModelServerError) as err:
            await client.complete(BASE, QUESTION, on_text=collect)
        assert err.value.status == 500 and "fell over" in err.value.message and pieces == ["partial"]
    finally:
        await client.close()
    oa = openai_client(server.url)
    try:
        with pytest.raises(openai.APIError, match="fell over"):
            async for _ in await oa.chat.completions.create(model=BASE, messages=QUESTION, stream=True):
                pass
    finally:
        await oa.close()


async def test_any_stream_and_stream_options_get_200_or_4xx_never_500(server, caplog):
    """Property-based: whatever JSON `stream` and `stream_options` hold, and whatever the sampling fields and the
    content hold (JSON nested far too deep, lone surrogates, integers beyond any int64), the answer is 200 (a
    whole stream ending in [DONE] when streamed) or 4xx, and nothing is logged with a traceback."""
    import re

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    json_ish = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                            | st.text(max_size=8),
                            lambda children: st.lists(children, max_size=3)
                            | st.dictionaries(st.text(max_size=8), children, max_size=3), max_leaves=6)
    options = json_ish | st.fixed_dictionaries({}, optional={"include_usage": json_ish,
                                                             "continuous_usage_stats": json_ish, "extra": json_ish})
    huge = st.integers(min_value=2**63 - 1, max_value=2**80) | st.integers(min_value=-(2**80), max_value=-(2**63))
    surrogate = st.tuples(st.text(max_size=4), st.integers(0xD800, 0xDFFF).map(chr), st.text(max_size=4)).map("".join)
    deep = st.integers(65, 20_000).map(lambda n: f"\x00deep:{n}")  # replaced by [[[…]]] n deep once serialized
    sampling = {"seed": huge | json_ish, "max_tokens": huge | st.integers(1, 3) | json_ish,
                "temperature": huge | st.floats(0, 2) | json_ish, "top_p": huge | json_ish, "min_tokens": huge}
    content = st.text(max_size=8) | surrogate | deep | st.just("😀") | json_ish

    async def ask(body: dict) -> tuple[int, bytes]:
        raw = re.sub(r'"\\u0000deep:(\d+)"', lambda m: "[" * int(m[1]) + "]" * int(m[1]), json.dumps(body))
        async with aiohttp.ClientSession() as http:
            async with http.post(server.url + "/v1/chat/completions", data=raw.encode(),
                                 headers={"Content-Type": "application/json"}) as resp:
                return resp.status, await resp.read()

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    @given(extra=st.fixed_dictionaries({}, optional={"stream": json_ish | st.booleans(), "stream_options": options,
                                                     **sampling}),
           said=content)
    def probe(extra: dict, said) -> None:
        body = {"model": BASE, "messages": [*QUESTION[:1], {"role": "user", "content": said}], "max_tokens": 2,
                "temperature": 0, **extra}
        status, raw = asyncio.run_coroutine_threadsafe(ask(body), loop).result(30)
        statuses.append(status)
        drawn.update(k for k, v in (("deep", str(said).startswith("\x00deep:")),
                                    ("surrogate", isinstance(said, str) and any(0xD800 <= ord(c) <= 0xDFFF
                                                                                for c in said)),
                                    ("huge", any(isinstance(v, int) and abs(v) >= 2**63 for v in extra.values())))
                     if v)
        assert status == 200 or 400 <= status < 500, (extra, status, raw[:200])
        if status == 200 and extra.get("stream") is True:
            assert raw.endswith(b"data: [DONE]\n\n"), raw[-200:]
        if status == 200 and not extra.get("stream"):
            assert not json.loads(raw)["choices"][0]["message"]["content"].endswith("\ufffd")  # no cut character
        if status >= 400:
            assert b"\n" not in raw.strip() and "error" in json.loads(raw), raw[:200]  # one line of JSON

    loop, statuses, drawn = asyncio.get_running_loop(), [], set()
    await asyncio.to_thread(probe)
    assert {200, 400} <= set(statuses), sorted(set(statuses))
    assert drawn == {"deep", "surrogate", "huge"}, drawn  # the draw reached each hostile kind
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records if r.exc_info][:3]


# ---- ModelClient: the one client path ---------------------------------------------------------------------------

async def test_model_client_streams_in_order_and_raises_before_any_piece(start_server, tiny):
    server = await start_server(api_key="k3y")
    client = ModelClient(server.url, api_key="k3y")
    try:
        whole = await client.chat(BASE, QUESTION, max_tokens=24)
        seen: list[str] = []

        async def show(piece: str) -> None:
            seen.append(piece)

        assert await client.complete(BASE, QUESTION, max_tokens=24, on_text=show) == whole == "".join(seen)
        assert len(seen) > 1
        assert "".join([p async for p in client.chat_stream(BASE, QUESTION, max_tokens=24)]) == whole

        with pytest.raises(ModelServerError) as err:
            async for piece in client.chat_stream("support-v9", QUESTION):
                raise AssertionError(f"a piece before the error: {piece!r}")
        assert err.value.status == 404 and err.value.message == "The model `support-v9` does not exist."
    finally:
        await client.close()
    for key, expected in (("wrong", "wants another API key"), (None, "none was sent")):
        client = ModelClient(server.url, api_key=key)
        try:
            with pytest.raises(ModelServerError) as err:
                await client.complete(BASE, QUESTION, on_text=show)
            assert err.value.status == 401 and expected in err.value.message
        finally:
            await client.close()
    for url in (f"http://127.0.0.1:{free_port()}", "http://not a host:1"):  # nothing listens; no URL at all
        client = ModelClient(url)
        try:
            with pytest.raises(ModelServerUnavailable):
                await client.complete(BASE, QUESTION, on_text=show)
        finally:
            await client.close()


async def test_a_stream_cut_before_done_or_garbled_is_no_answer():
    """A server that stops mid-answer (no [DONE]) gives ModelServerUnavailable, not half an answer taken for whole;
    an event that is not JSON gives ModelServerError."""
    from aiohttp import web

    from fakes import local_http

    async def cut(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"choices": [{"index": 0, "delta": {"content": "The trial"}}]}\n\n')
        await resp.write(request.app["tail"])
        return resp

    for tail, raised in ((b"", ModelServerUnavailable), (b"data: {not json\n\n", ModelServerError)):
        app = web.Application()
        app["tail"] = tail
        app.router.add_post("/v1/chat/completions", cut)
        runner, url = await local_http.start(app)
        client = ModelClient(url)
        pieces: list[str] = []
        try:
            with pytest.raises(raised):
                async for piece in client.chat_stream(BASE, QUESTION):
                    pieces.append(piece)
            assert pieces == ["The trial"]
        finally:
            await client.close()
            await runner.cleanup()


# ---- ft ask --stream -----------------------------------------------------------------------------------------------

@pytest.fixture
async def stub(ft_env, monkeypatch):
    from tests.model_stub import ModelStub

    stub = await ModelStub().start()
    stub.chunk_delay_s = 0.001
    monkeypatch.setenv("FT_MODEL_SERVER_URL", stub.url)
    yield stub
    await stub.stop()


async def test_ft_ask_stream_prints_the_answer_as_it_comes_and_says_when_it_is_declined(stub):
    from core.prompt import DONT_KNOW
    from ftbot.cli.main import app

    def ask(*args: str):
        return CliRunner().invoke(app, ["ask", "How long does the free trial last?", *args])

    plain = await asyncio.to_thread(ask, "--no-retrieval", "--stream")
    assert plain.exit_code == 0, plain.output
    assert plain.stdout.splitlines() == ["The trial lasts 21 days.", "— base-model (base model: nothing deployed yet)"]
    asked = stub.requests[-1]
    assert asked["stream"] is True and asked["model"] == "base-model"

    # Retrieval finds nothing in the empty index: the streamed words are then declined, and the last line says so.
    declined = await asyncio.to_thread(ask, "--stream")
    assert declined.exit_code == 0, declined.output
    lines = declined.stdout.splitlines()
    assert lines[-3:] == ["The trial lasts 21 days.", f"→ declined (no context): {DONT_KNOW}",
                          "— base-model (base model: nothing deployed yet)"]
    unchanged = await asyncio.to_thread(ask)  # without --stream, as before
    assert unchanged.stdout.splitlines()[-3:] == [
        DONT_KNOW, "(not sent: no context; the model said: The trial lasts 21 days.)",
        "— base-model (base model: nothing deployed yet)"]
    assert "stream" not in stub.requests[-1]

    both = await asyncio.to_thread(ask, "--stream", "--json")
    assert both.exit_code == 1 and "choose one" in both.output
    helped = await asyncio.to_thread(CliRunner().invoke, app, ["ask", "--help"])
    assert "--stream" in helped.output


def test_the_stub_streams_its_answer_in_pieces_with_usage():
    """The stub the bot's tests use speaks the same events (another engineer's Slack streaming tests rely on it)."""
    from tests.model_stub import ModelStub

    async def run() -> list:
        stub = await ModelStub().start()
        try:
            _, _, events = await sse_events(stub.url, {"model": "base-model", "messages": QUESTION, "stream": True,
                                                       "stream_options": {"include_usage": True}})
            return events
        finally:
            await stub.stop()

    events = asyncio.run(run())
    assert joined(events) == "The trial lasts 21 days." and events[-1] == "[DONE]"
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] == 5
    assert json.dumps(events[1]["choices"][0]["delta"]) == '{"content": "The "}'
