"""The serving contract as the official `openai` client sees it: a second, real client of both servers."""

from __future__ import annotations


async def check_with_openai_client(url: str, base: str, adapter: str, api_key: str = "unused") -> None:
    """`adapter` is loaded on the server at `url`; `base` is its base model's served name; api_key: the server's."""
    import openai

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=120)
    try:
        models = {m.id: m for m in (await client.models.list()).data}
        assert base in models and adapter in models
        assert models[adapter].model_dump().get("parent") == base  # vLLM's extra field, kept by the client

        for model in (base, adapter):
            reply = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "How long does the free trial last?"}],
                max_tokens=8, temperature=0)
            choice = reply.choices[0]
            assert reply.model == model and choice.message.role == "assistant"
            assert isinstance(choice.message.content, str) and choice.finish_reason in ("stop", "length")
            assert 0 < reply.usage.completion_tokens <= 8 and reply.usage.prompt_tokens > 0

        try:
            await client.chat.completions.create(model="no-such-adapter", max_tokens=4,
                                                 messages=[{"role": "user", "content": "hi"}])
        except openai.NotFoundError as exc:
            assert "no-such-adapter" in str(exc)
        else:
            raise AssertionError("an unknown model name must be a 404")
    finally:
        await client.close()


async def check_streaming_with_openai_client(url: str, model: str, api_key: str = "unused") -> None:
    """Streamed with the official client (stream=True, include_usage), the answer is the whole answer's: the same
    text, finish_reason and usage, the usage in a last chunk with no choices."""
    import openai

    client = openai.AsyncOpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0, timeout=120)
    ask = {"model": model, "messages": [{"role": "user", "content": "How long does the free trial last?"}],
           "max_tokens": 24, "temperature": 0, "extra_body": {"ignore_eos": True}}
    try:
        whole = await client.chat.completions.create(**ask)
        stream = await client.chat.completions.create(**ask, stream=True, stream_options={"include_usage": True})
        chunks = [chunk async for chunk in stream]
        assert chunks[0].choices[0].delta.role == "assistant"
        assert {c.id for c in chunks} == {chunks[0].id} and {c.object for c in chunks} == {"chat.completion.chunk"}
        assert {c.model for c in chunks} == {model}
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == whole.choices[0].message.content and text
        assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1, "not streamed in pieces"
        finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert finished == [whole.choices[0].finish_reason] == ["length"]
        last = chunks[-1]
        assert last.choices == [] and all(c.usage is None for c in chunks[:-1])
        assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == \
            (whole.usage.prompt_tokens, whole.usage.completion_tokens, whole.usage.total_tokens) != (0, 0, 0)

        plain = [chunk async for chunk in await client.chat.completions.create(**ask, stream=True)]
        assert all(c.choices for c in plain) and all(c.usage is None for c in plain)  # no usage without asking
        assert "".join(c.choices[0].delta.content or "" for c in plain) == text
    finally:
        await client.close()


async def sse_events(url: str, body: dict, api_key: str = "unused") -> tuple[int, str, list]:
    """(status, content type, events): each `data:` line parsed as JSON, [DONE] as the string."""
    import json

    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(url + "/v1/chat/completions", json=body,
                             headers={"Authorization": f"Bearer {api_key}"}) as resp:
            raw = (await resp.read()).decode("utf-8")
            ctype = resp.headers.get("Content-Type", "")
    if not ctype.startswith("text/event-stream"):
        return resp.status, ctype, [json.loads(raw)]
    assert raw.endswith("\n\n") and all(e.startswith("data: ") for e in raw[:-2].split("\n\n")), raw[:300]
    events = [e.removeprefix("data: ") for e in raw[:-2].split("\n\n")]
    return resp.status, ctype, [e if e == "[DONE]" else json.loads(e) for e in events]
