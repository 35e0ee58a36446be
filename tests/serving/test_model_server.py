"""The embedded model server over real HTTP: vLLM's contract, several adapters, the queue, parity."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from serving.client import ModelClient, ModelServerError
from tests.serving.conftest import BASE

QUESTION = [{"role": "system", "content": "You are the support assistant."},
            {"role": "user", "content": "How long does the free trial last?"}]


async def call(method: str, url: str, json=None, **kwargs):
    """(status, content type, body: parsed JSON or text)."""
    async with aiohttp.ClientSession() as http:
        async with http.request(method, url, json=json, **kwargs) as resp:
            ctype = resp.headers.get("Content-Type", "")
            body = await resp.json() if "json" in ctype else await resp.text()
            return resp.status, ctype, body


async def chat(url: str, model: str, max_tokens: int = 12, **extra):
    return await call("POST", url + "/v1/chat/completions",
                      {"model": model, "messages": QUESTION, "max_tokens": max_tokens, "temperature": 0, **extra})


async def until(predicate, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


def offline_answer(base_dir, adapter_dir, max_tokens: int) -> str:
    """What transformers (+ PeftModel) generate for QUESTION, greedy, outside any server."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, adapter_dir)
    text = tokenizer.apply_chat_template(QUESTION, add_generation_prompt=True, tokenize=False)
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_tokens,
                             do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    # less a character max_new_tokens cut in half (U+FFFD), which the server never sends
    return tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).rstrip("\ufffd")


async def test_models_load_unload_follow_vllm(server, tiny):
    url = server.url
    status, _, body = await call("GET", url + "/v1/models")
    assert status == 200 and body["object"] == "list"
    assert [(m["id"], m["root"], m["parent"], m["object"]) for m in body["data"]] == \
        [(BASE, str(tiny["base"]), None, "model")]

    status, ctype, text = await call("POST", url + "/v1/load_lora_adapter",
                                     {"lora_name": "support-v1", "lora_path": str(tiny["a1"])})
    assert (status, text) == (200, "Success: LoRA adapter 'support-v1' added successfully.")
    assert ctype.startswith("text/plain")
    _, _, body = await call("GET", url + "/v1/models")
    assert [(m["id"], m["root"], m["parent"]) for m in body["data"]] == \
        [(BASE, str(tiny["base"]), None), ("support-v1", str(tiny["a1"]), BASE)]

    status, ctype, err = await call("POST", url + "/v1/load_lora_adapter",
                                    {"lora_name": "support-v1", "lora_path": str(tiny["a2"])})
    assert status == 400 and "json" in ctype
    assert err["error"]["code"] == 400 and "has already been loaded" in err["error"]["message"]
    status, _, err = await call("POST", url + "/v1/load_lora_adapter",
                                {"lora_name": BASE, "lora_path": str(tiny["a2"])})
    assert status == 400 and "conflicts with a served base model" in err["error"]["message"]
    status, _, err = await call("POST", url + "/v1/load_lora_adapter", {"lora_name": "support-v2"})
    assert status == 400 and err["error"]["message"] == "Both 'lora_name' and 'lora_path' must be provided."
    status, _, err = await call("POST", url + "/v1/unload_lora_adapter", {"lora_name": "nope"})
    assert status == 404 and err["error"] == {"message": "The lora adapter 'nope' cannot be found.",
                                              "type": "NotFoundError", "param": "lora_name", "code": 404}
    status, _, err = await call("POST", url + "/v1/unload_lora_adapter", {})
    assert status == 400

    status, _, text = await call("POST", url + "/v1/unload_lora_adapter", {"lora_name": "support-v1"})
    assert (status, text) == (200, "Success: LoRA adapter 'support-v1' removed successfully.")
    _, _, body = await call("GET", url + "/v1/models")
    assert [m["id"] for m in body["data"]] == [BASE]
    status, _, _ = await chat(url, "support-v1")
    assert status == 404

    status, ctype, text = await call("GET", url + "/health")
    assert (status, text) == (200, "")


async def test_base_and_two_adapters_answer_deterministically_with_train_serve_parity(server, tiny):
    url = server.url
    for name in ("a1", "a2"):
        status, _, _ = await call("POST", url + "/v1/load_lora_adapter",
                                  {"lora_name": name, "lora_path": str(tiny[name])})
        assert status == 200

    answers = {}
    for model in (BASE, "a1", "a2", "a1", BASE, "a2"):  # interleaved: switching adapters leaves no trace
        status, _, body = await chat(url, model)
        assert status == 200, body
        assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-") and body["model"] == model
        choice = body["choices"][0]
        assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
        assert choice["finish_reason"] in ("stop", "length")
        usage = body["usage"]
        assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 12
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        answers.setdefault(model, set()).add(choice["message"]["content"])
    assert all(len(texts) == 1 for texts in answers.values()), answers
    base, a1, a2 = (answers[m].pop() for m in (BASE, "a1", "a2"))
    assert len({base, a1, a2}) == 3, "each adapter must change the answer"

    # train/serve parity: the server answers exactly what transformers + peft generate offline.
    assert a1 == offline_answer(tiny["base"], tiny["a1"], 12)
    assert a2 == offline_answer(tiny["base"], tiny["a2"], 12)
    assert base == offline_answer(tiny["base"], None, 12)

    status, _, err = await chat(url, "support-v9")
    assert status == 404
    assert err == {"error": {"message": "The model `support-v9` does not exist.", "type": "NotFoundError",
                             "param": "model", "code": 404}}


async def test_bad_requests_get_400(server):
    url = server.url + "/v1/chat/completions"
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=b"{not json", headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400 and "not valid JSON" in (await resp.json())["error"]["message"]
    for body, field in (({"model": BASE}, "messages"),
                        ({"messages": QUESTION}, "model"),
                        ({"model": BASE, "messages": [{"role": "wizard", "content": "hi"}]}, "messages"),
                        ({"model": BASE, "messages": QUESTION, "max_tokens": 0}, "max_tokens"),
                        ({"model": BASE, "messages": QUESTION, "temperature": -1}, "temperature"),
                        ({"model": BASE, "messages": QUESTION, "stream": "yes"}, "stream"),
                        ({"model": BASE, "messages": QUESTION, "stream_options": {"include_usage": True}},
                         "stream_options"),
                        ({"model": BASE, "messages": QUESTION, "stream": True, "stream_options": []},
                         "stream_options"),
                        ({"model": BASE, "messages": QUESTION, "stream": True,
                          "stream_options": {"include_usage": "yes"}}, "stream_options"),
                        ({"model": BASE, "messages": QUESTION, "stop": ["a", ""]}, "stop"),
                        ({"model": BASE, "messages": QUESTION, "max_tokens": 5000}, "max_tokens")):
        status, _, err = await call("POST", url, body)
        assert status == 400, body
        assert err["error"]["param"] == field and err["error"]["type"] == "BadRequestError"
    status, _, err = await call("POST", server.url + "/v1/load_lora_adapter", [1, 2])
    assert status == 400


async def test_a_stop_sequence_ends_the_answer_before_it_as_vllm_does(server):
    status, _, full = await chat(server.url, BASE, max_tokens=48, ignore_eos=True)
    text = full["choices"][0]["message"]["content"].replace("\ufffd", "")
    assert status == 200 and len(text) >= 9
    stop = text[len(text) // 2:len(text) // 2 + 3]  # somewhere in the middle of what it says unstopped
    status, _, cut = await chat(server.url, BASE, max_tokens=48, ignore_eos=True, stop=[stop, "never said"])
    choice = cut["choices"][0]
    assert status == 200 and choice["finish_reason"] == "stop"
    assert choice["message"]["content"].replace("\ufffd", "") == text[:text.index(stop)]
    assert cut["usage"]["completion_tokens"] < full["usage"]["completion_tokens"]


async def test_health_and_models_answer_while_a_long_generation_runs(server):
    url = server.url
    long_chat = asyncio.create_task(chat(url, BASE, max_tokens=1500, ignore_eos=True))
    await until(lambda: server.worker.running == 1)
    for _ in range(5):
        started = time.perf_counter()
        status, _, _ = await call("GET", url + "/health")
        assert status == 200 and time.perf_counter() - started < 0.2
        status, _, body = await call("GET", url + "/v1/models")
        assert status == 200 and body["data"][0]["id"] == BASE
        await asyncio.sleep(0.05)
    assert not long_chat.done(), "the generation should still be running"

    status, _, body = await chat(url, BASE, max_tokens=40, ignore_eos=True)  # as benchmarks ask: exactly 40
    assert status == 200 and body["usage"]["completion_tokens"] == 40, body
    assert body["choices"][0]["finish_reason"] == "length"

    # A client that hangs up frees the model thread: the next request does not wait for 1500 tokens.
    long_chat.cancel()
    started = time.perf_counter()
    status, _, body = await chat(url, BASE, max_tokens=5)
    assert status == 200 and time.perf_counter() - started < 2.0


async def test_full_queue_answers_503_at_once(start_server, tiny):
    server = await start_server(max_queue=1)
    url = server.url
    running = asyncio.create_task(chat(url, BASE, max_tokens=1500, ignore_eos=True))
    await until(lambda: server.worker.running == 1)
    waiting = asyncio.create_task(chat(url, BASE, max_tokens=1500, ignore_eos=True))
    await until(lambda: server.worker.waiting == 1)

    started = time.perf_counter()
    status, _, err = await chat(url, BASE)
    assert time.perf_counter() - started < 0.5
    assert status == 503 and err["error"]["message"] == "server busy: 1 requests queued"
    status, _, metrics = await call("GET", url + "/metrics")
    assert 'ftserve_requests_total{endpoint="/v1/chat/completions",status="503"} 1.0' in metrics
    assert "ftserve_queue_depth 1.0" in metrics and "ftserve_requests_running 1.0" in metrics
    # A deploy is not refused by a full queue: the load waits its turn on the model thread.
    load = asyncio.create_task(call("POST", url + "/v1/load_lora_adapter",
                                    {"lora_name": "v1", "lora_path": str(tiny["a1"])}))
    await until(lambda: server.worker.waiting == 2)

    waiting.cancel()  # hung up while queued: never runs
    running.cancel()  # hung up while generating: stops at the next token
    assert (await load)[:1] == (200,)
    await until(lambda: server.worker.waiting == 0 and server.worker.running == 0)
    status, _, _ = await chat(url, "v1", max_tokens=3)
    assert status == 200
    _, _, metrics = await call("GET", url + "/metrics")
    assert 'ftserve_requests_total{endpoint="/v1/chat/completions",status="499"} 2.0' in metrics
    assert "ftserve_generation_seconds_count 1.0" in metrics  # only generations that were answered


async def _serving_good(url: str, tiny):
    """Load the adapter "good"; its answer before anything is refused."""
    status, _, _ = await call("POST", url + "/v1/load_lora_adapter",
                              {"lora_name": "good", "lora_path": str(tiny["a1"])})
    assert status == 200
    _, _, before = await chat(url, "good")
    return before


async def test_refused_adapters_leave_the_loaded_ones_serving(server, tiny):
    url = server.url
    before = await _serving_good(url, tiny)

    refused = {
        "corrupted": (400, "could not read the adapter weights"),
        "rank16": (400, "LoRA rank 16 (r) is greater than max_lora_rank 8"),
        "bias": (400, "bias='all' is not supported"),
        "lm_head": (400, "modules_to_save ['lm_head'] is not supported"),
        "other_base_adapter": (400, "failed to load LoRA adapter"),
    }
    for key, (code, message) in refused.items():
        status, _, err = await call("POST", url + "/v1/load_lora_adapter",
                                    {"lora_name": key, "lora_path": str(tiny[key])})
        assert status == code and message in err["error"]["message"], (key, err)
    status, _, err = await call("POST", url + "/v1/load_lora_adapter",
                                {"lora_name": "missing", "lora_path": str(tiny["base"].parent / "no-such-dir")})
    assert status == 404 and err["error"]["message"].startswith("No adapter found for ")
    status, _, err = await call("POST", url + "/v1/load_lora_adapter",
                                {"lora_name": "notadapter", "lora_path": str(tiny["base"])})
    assert status == 404

    _, _, models = await call("GET", url + "/v1/models")
    assert [m["id"] for m in models["data"]] == [BASE, "good"]
    _, _, after = await chat(url, "good")
    assert after["choices"][0]["message"]["content"] == before["choices"][0]["message"]["content"]
    # ... and a good adapter still loads after the failures.
    status, _, _ = await call("POST", url + "/v1/load_lora_adapter",
                              {"lora_name": "good2", "lora_path": str(tiny["a2"])})
    assert status == 200
    _, _, metrics = await call("GET", url + "/metrics")
    assert "ftserve_adapters_loaded 2.0" in metrics
    assert 'ftserve_requests_total{endpoint="/v1/load_lora_adapter",status="400"} 5.0' in metrics


async def test_model_client_against_the_server(server, tiny):
    client = ModelClient(server.url, timeout_s=10)
    try:
        assert await client.base_model() == BASE
        assert await client.load_adapter("support-v3", str(tiny["a1"])) == \
            "Success: LoRA adapter 'support-v3' added successfully."
        assert [m["id"] for m in await client.models()] == [BASE, "support-v3"]
        answer = await client.chat("support-v3", QUESTION, max_tokens=12, temperature=0.0)
        assert answer == offline_answer(tiny["base"], tiny["a1"], 12)
        assert isinstance(await client.chat(BASE, QUESTION, max_tokens=4, temperature=0.7), str)

        with pytest.raises(ModelServerError) as err:
            await client.chat("support-v4", QUESTION)
        assert err.value.status == 404 and err.value.message == "The model `support-v4` does not exist."
        with pytest.raises(ModelServerError) as err:
            await client.load_adapter("support-v3", str(tiny["a2"]))
        assert err.value.status == 400 and "already been loaded" in err.value.message
        with pytest.raises(ModelServerError) as err:
            await client.load_adapter("broken", str(tiny["corrupted"]))
        assert err.value.status == 400
        assert "removed successfully" in await client.unload_adapter("support-v3")
        with pytest.raises(ModelServerError) as err:
            await client.unload_adapter("support-v3")
        assert err.value.status == 404
    finally:
        await client.close()


async def test_the_official_openai_client_talks_to_the_embedded_server(server, tiny):
    from tests.serving.contract import check_streaming_with_openai_client, check_with_openai_client

    client = ModelClient(server.url)
    try:
        await client.load_adapter("support-v1", str(tiny["a1"]))
    finally:
        await client.close()
    await check_with_openai_client(server.url, BASE, "support-v1")
    for model in (BASE, "support-v1"):  # streamed: what the whole answer says
        await check_streaming_with_openai_client(server.url, model)


async def test_an_api_key_guards_every_v1_path_as_vllm_does(start_server, tiny):
    server = await start_server(api_key="s3cret-key")
    url = server.url
    client = ModelClient(url, api_key="s3cret-key")
    try:
        await client.load_adapter("support-v1", str(tiny["a1"]))
    finally:
        await client.close()
    unauthorized = (401, {"error": "Unauthorized"})
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-key"},
                    {"Authorization": "s3cret-key"}, {"Authorization": "Bearer s3cret-key2"}):
        for method, path, body in (("GET", "/v1/models", None),
                                   ("POST", "/v1/chat/completions", {"model": BASE, "messages": QUESTION}),
                                   ("POST", "/v1/unload_lora_adapter", {"lora_name": "support-v1"}),
                                   ("POST", "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": str(tiny["a2"])}),
                                   ("GET", "/v1/no-such-path", None)):
            status, _, answer = await call(method, url + path, body, headers=headers)
            assert (status, answer) == unauthorized, (method, path, headers)
    # Health and metrics stay open, as vLLM's; nothing above changed what is served.
    assert (await call("GET", url + "/health"))[0] == 200
    status, _, metrics = await call("GET", url + "/metrics")
    assert status == 200 and 'endpoint="/v1/unload_lora_adapter",status="401"} 5.0' in metrics
    status, _, models = await call("GET", url + "/v1/models", headers={"Authorization": "bearer s3cret-key"})
    assert status == 200 and [m["id"] for m in models["data"]] == [BASE, "support-v1"]

    # The one client: with the key it is served, without it the refusal says why.
    for key, expected in (("s3cret-key", None), (None, "none was sent"), ("wrong", "wants another API key")):
        client = ModelClient(url, api_key=key)
        try:
            if expected is None:
                assert await client.chat("support-v1", QUESTION, max_tokens=3)
            else:
                with pytest.raises(ModelServerError) as err:
                    await client.models()
                assert err.value.status == 401 and expected in err.value.message
        finally:
            await client.close()


async def test_the_server_refuses_an_open_address_without_a_key(tiny):
    from serving.auth import bind_problem
    from serving.generation import Engine
    from serving.model_server import ModelServer

    engine = Engine(tiny["base"], max_lora_rank=8)
    with pytest.raises(ValueError, match="refusing to listen on 0.0.0.0 without an API key"):
        await ModelServer(engine).start("0.0.0.0", 0)
    assert [bind_problem(host, None) is None for host in ("127.0.0.1", "::1", "localhost", "127.0.0.2", "0.0.0.0",
                                                          "", "10.0.0.5", "example.com")] == \
        [True, True, True, True, False, False, False, False]
    assert bind_problem("0.0.0.0", "key") is None


async def test_a_dotted_adapter_name_gets_400_and_the_server_still_answers(server, tiny):
    url = server.url
    before = await _serving_good(url, tiny)
    for name in ("bad.name", "a/b", "x=y", "-lead", "ü", "a" * 101, " good"):
        status, _, err = await call("POST", url + "/v1/load_lora_adapter",
                                    {"lora_name": name, "lora_path": str(tiny["a2"])})
        assert status == 400 and "is not allowed" in err["error"]["message"], name
    # What used to leave a phantom adapter in peft: more loads and unloads after the refusal.
    for name, adapter in (("second", "a2"), ("third", "a1")):
        status, _, _ = await call("POST", url + "/v1/load_lora_adapter",
                                  {"lora_name": name, "lora_path": str(tiny[adapter])})
        assert status == 200
    for name in ("good", "second"):
        status, _, _ = await call("POST", url + "/v1/unload_lora_adapter", {"lora_name": name})
        assert status == 200
    for model in ("third", BASE):
        status, _, answer = await chat(url, model)
        assert status == 200 and answer["choices"][0]["message"]["content"], (model, answer)
    _, _, third = await chat(url, "third")
    assert third["choices"][0]["message"]["content"] == before["choices"][0]["message"]["content"]  # both a1
    assert (await call("GET", url + "/health"))[0] == 200

    # The client refuses such a name before sending it.
    client = ModelClient(url)
    try:
        with pytest.raises(ModelServerError) as err:
            await client.load_adapter("bad.name", str(tiny["a2"]))
        assert err.value.status == 400 and "is not allowed" in err.value.message
    finally:
        await client.close()
    _, _, metrics = await call("GET", url + "/metrics")
    assert 'ftserve_requests_total{endpoint="/v1/load_lora_adapter",status="400"} 7.0' in metrics  # not 8


async def test_a_pickled_adapter_is_refused_unread(server, tiny):
    status, _, err = await call("POST", server.url + "/v1/load_lora_adapter",
                                {"lora_name": "pickled", "lora_path": str(tiny["pickled"])})
    assert status == 400 and "adapter_model.bin (a pickle)" in err["error"]["message"]
    _, _, models = await call("GET", server.url + "/v1/models")
    assert [m["id"] for m in models["data"]] == [BASE]


async def test_health_reports_an_engine_that_cannot_serve(server, tiny):
    """When peft holds an adapter the engine does not list (what a half-done load used to leave), /health says
    so with 503 and chats are refused with the reason, rather than 200 and a KeyError on every chat."""
    from peft import LoraConfig

    url = server.url
    for name, adapter in (("one", "a1"), ("two", "a2")):
        assert (await call("POST", url + "/v1/load_lora_adapter",
                           {"lora_name": name, "lora_path": str(tiny[adapter])}))[0] == 200
    engine = server.engine
    await server.worker.run(lambda: engine.peft.add_adapter(
        "stray", LoraConfig(r=8, target_modules="all-linear", task_type="CAUSAL_LM")), bounded=False)
    assert (await call("POST", url + "/v1/unload_lora_adapter", {"lora_name": "one"}))[0] == 200
    status, _, err = await call("GET", url + "/health")
    assert status == 503 and "inconsistent" in err["error"]["message"] and "'stray'" in err["error"]["message"]
    status, _, err = await chat(url, "two")
    assert status == 503 and "restart the server" in err["error"]["message"]
