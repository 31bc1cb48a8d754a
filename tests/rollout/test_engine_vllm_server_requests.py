"""What the server engine sends to vLLM 0.31's `/inference/v1/generate` with `content_parts` (the default), checked
against a stand-in HTTP endpoint started inside the test (tests.rollout.test_engine_openai.ChatServer). This is
not a vLLM test (vLLM cannot be installed here): it checks the request building and the answer handling, i.e.
unexpanded ids with one placeholder per image, images as lossless PNG data URLs keyed by content, each image
encoded once across turns, no render step, and the token-exactness check of the server's expanded length against
the trainer's own expansion (`rollout.expand.expand_sequence`).
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

import numpy as np
import pytest
from PIL import Image

from rollout.engines.base import EngineError, SamplingParams
from rollout.engines.vllm_requests import TokenLayout
from rollout.engines.vllm_server import VLLMServerEngine, generate_request_body, image_content_part, image_key
from rollout.expand import expand_sequence
from rollout.protocols import get_protocol
from rollout.render import ChatRenderer
from tests.rollout.test_engine_openai import ChatServer, Reply

PROTOCOL = get_protocol("codevl")


def _images() -> list[np.ndarray]:
    rng = np.random.RandomState(0)
    return [rng.randint(0, 255, (80, 120, 3), dtype=np.uint8), rng.randint(0, 255, (64, 64, 3), dtype=np.uint8)]


def _prompt(processor: Any) -> list[int]:
    return ChatRenderer(processor).prompt_ids(PROTOCOL.initial_messages("What colour?", [(120, 80), (64, 64)]))


def _decode_png(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


def test_request_body_with_content_parts_keeps_the_ids_unexpanded(processor: Any) -> None:
    prompt = _prompt(processor)
    parts = [image_content_part("data:image/png;base64,AAAA", "k0"),
             image_content_part("data:image/png;base64,BB", "k1")]
    body = generate_request_body("m", prompt, None, {"temperature": 1.0, "logit_bias": {5: -100.0}}, "r1",
                                 content_parts=parts)
    assert body["token_ids"] == prompt and "features" not in body
    assert body["content_parts"] == [{"type": "image_url", "url": "data:image/png;base64,AAAA", "uuid": "k0"},
                                     {"type": "image_url", "url": "data:image/png;base64,BB", "uuid": "k1"}]
    assert body["sampling_params"]["logit_bias"] == {"5": -100.0}  # JSON keys; vLLM converts them back
    with pytest.raises(ValueError, match="mutually exclusive"):
        generate_request_body("m", prompt, {"mm_hashes": {}}, {}, "r2", content_parts=parts)


def test_server_engine_sends_unexpanded_ids_and_png_images_and_checks_the_expansion(processor: Any) -> None:
    prompt, images = _prompt(processor), _images()
    layout = TokenLayout.from_tokenizer(processor.tokenizer)
    trainer_len = len(expand_sequence(prompt, images, processor).input_ids)  # what the trainer will train on
    reply_ids = processor.tokenizer.encode("It is red.", add_special_tokens=False) + [layout.eos[0]]
    expanded = {"n": trainer_len}

    def respond(body: dict[str, Any], n: int) -> Reply:
        return Reply(body={"choices": [{"index": 0, "token_ids": reply_ids, "finish_reason": "stop",
                                        "logprobs": {"content": [{"logprob": -0.25} for _ in reply_ids]}}],
                           "usage": {"prompt_tokens": expanded["n"], "completion_tokens": len(reply_ids)}})

    server = ChatServer(respond)
    try:
        eng = VLLMServerEngine(server.base_url, processor, model="m", backoff_base_s=0.01)
        sampling = SamplingParams(max_new_tokens=16, temperature=1.0, stop=PROTOCOL.stop, seed=7)

        async def two_turns() -> list[Any]:
            outs = [await eng.generate(prompt, images, sampling), await eng.generate(prompt, images, sampling)]
            await eng.aclose()
            return outs

        outs = asyncio.run(two_turns())
        assert [o.token_ids for o in outs] == [reply_ids, reply_ids] and outs[0].text == "It is red."
        assert outs[0].metadata["prompt_tokens_expanded"] == trainer_len
        assert outs[0].metadata["weights_version"] == 0 and outs[0].logprobs == [-0.25] * len(reply_ids)
        assert len(server.requests) == 2 and all("token_ids" in b for b in server.requests)  # no render requests
        for body in server.requests:
            assert body["token_ids"] == prompt  # unexpanded: one placeholder per image
            assert body["token_ids"].count(layout.image_pad) == len(images) and "features" not in body
            parts = body["content_parts"]
            assert [p["uuid"] for p in parts] == [image_key(im) for im in images]
            for p, im in zip(parts, images, strict=True):
                assert np.array_equal(_decode_png(p["url"]), im)  # lossless: the server sees the trainer's pixels
            assert body["sampling_params"]["seed"] == 7 and body["sampling_params"]["logprobs"] == 0
        assert eng.counts["png_encodes"] == 2 and eng.counts["renders"] == 0  # each image encoded once, 2 turns

        expanded["n"] = trainer_len + 4  # a server whose processor sizes images differently

        async def mismatched() -> None:
            try:
                await eng.generate(prompt, images, sampling)
            finally:
                await eng.aclose()

        with pytest.raises(EngineError, match=f"{trainer_len + 4} tokens, the trainer's processor to {trainer_len}"):
            asyncio.run(mismatched())
    finally:
        server.close()


def test_unknown_image_transport_is_refused(processor: Any) -> None:
    with pytest.raises(ValueError, match="unknown image_transport 'pixels'; valid: content_parts, features"):
        VLLMServerEngine("http://127.0.0.1:9", processor, image_transport="pixels")
