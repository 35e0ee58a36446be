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
