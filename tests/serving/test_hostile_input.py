"""Issue 27's probes of the embedded server: each gets a 4xx with a one-line JSON error naming the reason, never a
500, and nothing is logged with a traceback; the server serves on after each."""

from __future__ import annotations

import json
import logging
import os
import shutil

import aiohttp
import pytest

from tests.serving.conftest import BASE
from tests.serving.test_model_server import QUESTION, call, chat


async def post_raw(url: str, data: bytes) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=data, headers={"Content-Type": "application/json"}) as resp:
            return resp.status, await resp.read()


def one_line_error(raw: bytes) -> dict:
    """The body is vLLM's error JSON on one line."""
    assert b"\n" not in raw.strip() and b"Traceback" not in raw, raw[:300]
    return json.loads(raw)["error"]


def no_traceback_logged(caplog) -> None:
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR], \
        [r.getMessage()[:200] for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


async def still_serving(url: str) -> None:
    status, _, body = await chat(url, BASE, max_tokens=2)
    assert status == 200 and body["choices"][0]["message"]["role"] == "assistant"


WEIGHTS = "adapter_model.safetensors"


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


async def test_a_seed_of_2_to_the_64_gets_400_also_through_the_openai_client(server, caplog):
    import openai

    caplog.set_level(logging.INFO)
    for seed in (2**64, 2**63, 2**100, -(2**63) - 1, 10**4000):
        status, raw = await post_raw(server.url + "/v1/chat/completions", json.dumps(
            {"model": BASE, "messages": QUESTION, "max_tokens": 2, "temperature": 0.7, "seed": seed}).encode())
        error = one_line_error(raw)
        assert status == 400 and error["param"] == "seed" and "[-2**63, 2**63 - 1]" in error["message"], error
        assert len(error["message"]) < 200  # a 4,000-digit seed is not echoed whole
    for seed in (2**63 - 1, -(2**63), 0):  # vLLM's range (torch.long): served
        status, _, body = await chat(server.url, BASE, max_tokens=2, temperature=0.7, seed=seed)
        assert status == 200, (seed, body)

    client = openai.AsyncOpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, timeout=60)
    try:
        with pytest.raises(openai.BadRequestError, match="seed must be an integer"):
            await client.chat.completions.create(model=BASE, messages=QUESTION, max_tokens=2, seed=2**64)
    finally:
        await client.close()
    no_traceback_logged(caplog)
    await still_serving(server.url)


async def test_json_nested_100000_deep_or_5000_deep_inside_content_gets_400(server, caplog):
    caplog.set_level(logging.INFO)
    url = server.url
    head = '{"model": "%s", "max_tokens": 2, "messages": [{"role": "user", "content": ' % BASE
    for path, body in (("/v1/chat/completions", nested(100_000)),
                       ("/v1/chat/completions", '{"model": %s}' % nested(100_000)),
                       ("/v1/chat/completions", head + nested(5000) + "}]}"),
                       ("/v1/chat/completions", head + '[{"type": "text", "text": %s}]}]}' % nested(5000)),
                       ("/v1/chat/completions", head + '[{"type": "text", "text": %s}]}]}' % nested(60)),
                       ("/v1/load_lora_adapter", '{"lora_name": "x", "lora_path": %s}' % nested(5000)),
                       ("/v1/unload_lora_adapter", '{"lora_name": %s}' % nested(100))):
        status, raw = await post_raw(url + path, body.encode())
        error = one_line_error(raw)
        assert status == 400, (path, body[:80], error)
        assert "nested deeper than 64 levels" in error["message"] or "must be a string" in error["message"], error
    no_traceback_logged(caplog)
    await still_serving(url)


async def test_a_lone_surrogate_gets_400_naming_the_field(server, tiny, caplog):
    caplog.set_level(logging.INFO)
    url = server.url
    ask = {"model": BASE, "max_tokens": 2, "temperature": 0}
    for body, param, where in (
            ({**ask, "messages": [{"role": "user", "content": "x\ud800y"}]}, "messages", "messages[0].content"),
            ({**ask, "messages": [{"role": "user", "content": [{"type": "text", "text": "\udfff"}]}]}, "messages",
             "messages[0].content[0].text"),
            ({**ask, "messages": QUESTION, "stop": ["a\ud83d"]}, "stop", "stop[0]"),
            ({**ask, "model": "base\udc80", "messages": QUESTION}, "model", "model"),
            ({**ask, "messages": QUESTION, "\ud800": 1}, None, "a key in the body")):
        status, _, err = await call("POST", url + "/v1/chat/completions", body)  # json.dumps escapes it: \ud800
        assert status == 400 and err["error"]["param"] == param, (body, err)
        assert err["error"]["message"].startswith(where) and "is not valid Unicode" in err["error"]["message"], err
    status, _, err = await call("POST", url + "/v1/load_lora_adapter",
                                {"lora_name": "x", "lora_path": str(tiny["a1"]) + "\ud800"})
    assert status == 400 and err["error"]["param"] == "lora_path" and "not valid Unicode" in err["error"]["message"]
    no_traceback_logged(caplog)
    await still_serving(url)


async def test_an_adapter_path_longer_than_255_characters_gets_400_with_the_reason(server, tiny, caplog):
    caplog.set_level(logging.INFO)
    for path, reason in ((str(tiny["a1"].parent / ("a" * 300)), "has a file name longer than 255 bytes"),
                         ("/tmp/" + "ü" * 200, "has a file name longer than 255 bytes"),  # 400 bytes in UTF-8
                         ("/x" * 3000, "is longer than 4096 bytes"),
                         (str(tiny["a1"]) + "\x00/etc", "contains a NUL character")):
        status, _, err = await call("POST", server.url + "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": path})
        assert (status, err["error"]["param"], err["error"]["message"]) == (400, "lora_path", f"lora_path {reason}")
    no_traceback_logged(caplog)
    # The engine checks it too, for callers other than the HTTP route.
    from serving.errors import ServingError

    with pytest.raises(ServingError, match="longer than 255 bytes") as refused:
        await server.worker.run(server.engine.load_adapter, "x", "/tmp/" + "a" * 300, bounded=False)
    assert refused.value.status == 400


@pytest.fixture
def bad_folders(tiny, tmp_path):
    """Copies of a good adapter, each broken one way, and the reason the refusal must name."""
    def copy(name: str):
        return shutil.copytree(tiny["a1"], tmp_path / name)

    config = json.loads((tiny["a1"] / "adapter_config.json").read_text())
    folders = {}
    for name, content, reason in (
            ("invalid-json", "{not json", "adapter_config.json is not valid JSON"),
            ("not-an-object", "[1, 2]", "adapter_config.json must hold a JSON object, not list"),
            ("deep-json", nested(100_000), "adapter_config.json is not valid JSON"),
            ("rank-7", json.dumps({**config, "r": 7}), "LoRA rank 7 (r) is not one vLLM serves"),
            ("rank-pattern", json.dumps({**config, "rank_pattern": [8]}), "has a field of the wrong type"),
            ("prompt-tuning", json.dumps({**config, "peft_type": "PROMPT_TUNING"}), "only LoRA adapters are served"),
            ("lora-config-peft-refuses", json.dumps({**config, "lora_alpha": "lots"}), "")):
        folder = copy(name)
        (folder / "adapter_config.json").write_text(content)
        folders[name] = (folder, reason)
    garbage = copy("garbage-safetensors")
    (garbage / "adapter_model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00garbage!" * 10)
    folders["garbage-safetensors"] = (garbage, "could not read the adapter weights")
    folders["other-base"] = (tiny["other_base_adapter"], "failed to load LoRA adapter")
    return folders


async def test_a_bad_adapter_folder_gets_400_naming_the_reason(server, tiny, bad_folders, caplog):
    caplog.set_level(logging.INFO)
    url = server.url
    assert (await call("POST", url + "/v1/load_lora_adapter", {"lora_name": "good", "lora_path": str(tiny["a1"])}))[0] \
        == 200
    for name, (folder, reason) in bad_folders.items():
        status, raw = await post_raw(url + "/v1/load_lora_adapter",
                                     json.dumps({"lora_name": name, "lora_path": str(folder)}).encode())
        error = one_line_error(raw)
        assert status == 400 and error["param"] == "lora_path" and reason in error["message"], (name, error)
    no_traceback_logged(caplog)
    _, _, models = await call("GET", url + "/v1/models")
    assert [m["id"] for m in models["data"]] == [BASE, "good"]
    assert (await chat(url, "good"))[0] == 200 and (await call("GET", url + "/health"))[0] == 200


async def test_a_symlinked_adapter_config_is_refused_not_followed(server, tiny, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    secret = tmp_path / "shadow"
    secret.write_text("root:$6$TOPSECRETHASH:19000:0:99999:7:::\n")
    good_config = tmp_path / "elsewhere.json"
    shutil.copy(tiny["a1"] / "adapter_config.json", good_config)
    for name, target, linked in (("to-shadow", secret, "adapter_config.json"),
                                 ("to-good-config", good_config, "adapter_config.json"),  # even a good one
                                 ("weights-link", tiny["a2"] / WEIGHTS, WEIGHTS)):
        folder = shutil.copytree(tiny["a1"], tmp_path / name)
        (folder / linked).unlink()
        os.symlink(target, folder / linked)
        status, _, err = await call("POST", server.url + "/v1/load_lora_adapter",
                                    {"lora_name": name.replace("-", ""), "lora_path": str(folder)})
        message = err["error"]["message"]
        assert status == 400 and f"holds symbolic links ({linked})" in message and "not followed" in message, err
        assert "TOPSECRET" not in message and "root:" not in message
    no_traceback_logged(caplog)
    _, _, models = await call("GET", server.url + "/v1/models")
    assert [m["id"] for m in models["data"]] == [BASE]


async def test_max_tokens_2_on_an_emoji_prompt_never_returns_half_a_character(server, monkeypatch):
    """The tiny tokenizer is byte-level: an emoji is four tokens, so max_tokens=2 stops inside it. The answer
    drops the cut character rather than sending U+FFFD, streamed or not."""
    import torch

    from tests.serving.contract import sse_events

    engine = server.engine
    emoji = engine.tokenizer.encode("ok 😀", add_special_tokens=False)
    assert len(engine.tokenizer.decode(emoji[-4:])) == 1, "the emoji should be several tokens"
    for cut in range(1, len(emoji)):  # every prefix: a whole character or nothing of it
        text, _ = engine.answer_text(emoji[:cut], ignore_eos=False, stop=None)
        assert "\ufffd" not in text and "ok 😀".startswith(text), (cut, text)

    def says_half_an_emoji(input_ids, generation_config, **kwargs):  # the model's next tokens: the emoji's first two
        return torch.cat([input_ids, torch.tensor([emoji[-4:][:generation_config.max_new_tokens]])], dim=1)

    monkeypatch.setattr(engine.base, "generate", says_half_an_emoji)
    body = {"model": BASE, "max_tokens": 2, "temperature": 0, "messages": [{"role": "user", "content": "😀😀😀"}]}
    status, _, answer = await call("POST", server.url + "/v1/chat/completions", body)
    assert status == 200 and answer["choices"][0] == {"index": 0, "logprobs": None, "finish_reason": "length",
                                                      "message": {"role": "assistant", "content": ""}}
    assert answer["usage"]["completion_tokens"] == 2
    status, _, events = await sse_events(server.url, {**body, "stream": True})
    pieces = [e["choices"][0]["delta"].get("content") for e in events if isinstance(e, dict) and e.get("choices")]
    assert status == 200 and "\ufffd" not in "".join(p or "" for p in pieces) and events[-1] == "[DONE]"
