"""A separately launched `vllm serve` on its own GPUs: token-in/token-out generation with images, NCCL weight sync.

Launch the server (also `scripts/vllm_server.sh`; vLLM >= 0.30, pinned 0.31.0):

    VLLM_SERVER_DEV_MODE=1 CUDA_VISIBLE_DEVICES=6,7 vllm serve Qwen/Qwen2.5-VL-7B-Instruct \\
        --host 0.0.0.0 --port 8000 --tensor-parallel-size 2 --data-parallel-size 1 \\
        --gpu-memory-utilization 0.9 --max-model-len 32768 \\
        --limit-mm-per-prompt '{"image": 16, "video": 0}' \\
        --enable-prefix-caching --generation-config vllm \\
        --logprobs-mode processed_logprobs --max-logprobs -1 \\
        --enable-scale-out \\
        --weight-transfer-config '{"backend": "nccl"}'

Why each flag: `VLLM_SERVER_DEV_MODE=1` exposes the weight-transfer and cache-reset endpoints;
`--enable-scale-out` registers `/v1/chat/completions/render` (image preprocessing) and `/inference/v1/generate`
(token ids + image features in, token ids + logprobs out); `--weight-transfer-config '{"backend": "nccl"}'` starts
the NCCL weight-transfer engine the trainer pushes weights through; `--logprobs-mode processed_logprobs` returns
the logprob under the distribution actually sampled from; `--generation-config vllm` keeps the checkpoint's
`generation_config.json` sampling defaults out (requests pin every setting anyway); `--limit-mm-per-prompt` must
cover `EpisodeLimits.max_images`. Image-size overrides (`--mm-processor-kwargs '{"max_pixels": ...}'`) must match
the trainer's processor: the engine checks that server and processor agree on every image's token count.

    engine = VLLMServerEngine("http://gpu-node:8000", processor)
    trajectories = await run_episodes(tasks, engine, ...)
    engine.init_weight_sync(device=accelerator.device)     # main process only, once
    push_weights(model, engine, accelerator=accelerator)   # every rank, after each optimizer step (train.weight_sync:
                                                           # the main process streams, the others join ZeRO-3 gathers)

Generation path: `/inference/v1/generate` (vLLM 0.31, `--enable-scale-out`), token ids in, token ids and logprobs
out. Two ways to send the images (`image_transport`):

- "content_parts" (default): the trajectory's UNEXPANDED ids (one `<|image_pad|>` per image, validated) plus the
  images as PNG data URLs in `content_parts` (`{"type": "image_url", "url": ..., "uuid": <content key>}`). The
  server parses them with its chat media parser and renders `TokensPrompt(prompt_token_ids=ids,
  multi_modal_data=...)` through its multimodal processor, which expands each placeholder for its image: the same
  path as the colocated engine's `LLM.generate` (vLLM 0.31: `ServingTokens.serve_tokens`, the `content_parts`
  branch, `online_renderer.renderer.render_cmpl_async`). PNG is lossless, so the server sees the trainer's pixels;
  the `uuid` (a hash of the pixels) lets the server's processor cache skip re-processing an image it has seen
  (the G rollouts of a group, every later turn). Each image is PNG-encoded once on this side (cached). What
  token-exactness needs is checked on every answer: the server's expanded prompt length (`usage.prompt_tokens`)
  must equal the trainer's expansion (`len(ids) - images + the processor's tokens per image`), else the request
  fails with an `EngineError` naming the min/max_pixels mismatch; the sampled ids are the completion only, so the
  trajectory stays unexpanded.
- "features" (what TRL 1.16 does): each image is sent alone to `/v1/chat/completions/render`, whose answer's
  `features` carry its hash, its processed tensors and its number of placeholder tokens (cached per image on this
  side); the generate request then carries EXPANDED ids (each placeholder repeated that many times; the features
  branch builds `mm_input(prompt_token_ids=...)` directly and expands nothing) with the features placed on the
  runs (`expand_for_features`, as TRL's `_place_features`). Every turn re-sends every image's processed tensors
  (float pixel patches, several times the PNG's size: `scripts/bench/server_image_bytes.py`).

Sampling settings are `rollout.engines.vllm_requests.sampling_kwargs` (banned placeholder tokens, per-request seed,
stop strings kept, `logprobs=0`). The token endpoint returns no `stop_reason`; it is recovered from the ids
(EOS, or the stop string found in the decoded text). Requests are retried on connection errors, timeouts and 5xx
(same seed, so a retry resamples the same tokens); other 4xx are raised with the server's message.

Weight sync reuses TRL's `VLLMClient` (imported lazily: it imports vLLM, which the trainer's nodes have):
`init_weight_sync` joins the server's NCCL group as rank 0; `update_weights` announces the tensors (name, dtype,
shape), broadcasts them between `/start_weight_update` and `/finish_weight_update`, then resets the prefix cache,
the multimodal processor cache and the vision-encoder cache (`/reset_prefix_cache`, `/reset_mm_cache`,
`/reset_encoder_cache`; TRL 1.16 resets only the first, TRL issue #7198), drops this engine's feature cache, and
bumps `weights_version` (recorded in every `GenerateOutput.metadata`). Call it when no generation is in flight.

Written against vLLM 0.31.0 and TRL 1.16's client, and checked by reading vLLM 0.31.0's source (the generate
request's `content_parts`/`features` fields and their handling, the reset endpoints); not run against a server in
this repository yet (vLLM cannot be installed on the machines it was written on).
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import uuid
from functools import partial
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from rollout.engines.base import EngineError, GenerateOutput, SamplingParams, TokenEngine
from rollout.engines.hf import BANNED_TOKENS
from rollout.engines.http_retry import RetryPolicy, error_message, post_json
from rollout.engines.openai_chat import png_data_url
from rollout.image_cache import image_key
from rollout.engines.vllm_requests import (
    TokenLayout,
    build_output,
    check_unexpanded_prompt,
    completion_from_json,
    expand_for_features,
    processor_image_tokens,
    request_seed,
    sampling_kwargs,
)

logger = logging.getLogger(__name__)

FINAL_ONLY = 2  # vllm.sampling_params.RequestOutputKind.FINAL_ONLY: one answer per request, every sequence in it
RESET_ENDPOINTS = ("/reset_prefix_cache", "/reset_mm_cache", "/reset_encoder_cache")
IMAGE_TRANSPORTS = ("content_parts", "features")
PNG_COMPRESS_LEVEL = 1  # fast zlib: the bytes go over a datacenter link, the encoding time is on the rollout path


@dataclass(frozen=True)
class ImageFeature:
    """One image as the server processed it: content hash, number of placeholder tokens, serialized tensors
    (base64 `MultiModalKwargsItem`; None means the server resolves it from its own cache)."""

    mm_hash: str
    length: int
    kwargs: str | None

    @property
    def nbytes(self) -> int:
        return len(self.kwargs or "") + len(self.mm_hash) + 64


def render_request_body(model: str, data_url: str) -> dict[str, Any]:
    """The `/v1/chat/completions/render` request that has the server preprocess one image."""
    return {"model": model, "max_tokens": 1,
            "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url}}]}]}


def image_feature_from_render(answer: Mapping[str, Any]) -> ImageFeature:
    """The single image's feature from a render answer (`{"features": {"mm_hashes": {"image": [h]},
    "mm_placeholders": {"image": [{"offset", "length"}]}, "kwargs_data": {"image": [b64]} | None}, ...}`)."""
    feats = answer.get("features") if isinstance(answer, Mapping) else None
    if not isinstance(feats, Mapping):
        raise EngineError(f"the render answer has no image features: {str(answer)[:300]}")
    try:
        hashes = feats["mm_hashes"]["image"]
        places = feats["mm_placeholders"]["image"]
    except (KeyError, TypeError) as exc:
        raise EngineError(f"the render answer's features have no image entry: {str(feats)[:300]}") from exc
    if len(hashes) != 1 or len(places) != 1:
        raise EngineError(f"rendering one image gave {len(hashes)} hashes and {len(places)} placeholders")
    data = feats.get("kwargs_data")
    kwargs = None
    if isinstance(data, Mapping) and data.get("image") is not None:
        kwargs = data["image"][0]
    return ImageFeature(mm_hash=str(hashes[0]), length=int(places[0]["length"]), kwargs=kwargs)


def request_features(images: Sequence[ImageFeature], runs: Sequence[Mapping[str, int]]) -> dict[str, Any] | None:
    """The `features` of a generate request: the images' hashes and tensors, placed on the placeholder runs of
    the expanded prompt (`vllm_requests.expand_for_features`)."""
    if not images:
        return None
    if len(images) != len(runs):
        raise ValueError(f"{len(images)} image features but {len(runs)} placeholder runs")
    for f, r in zip(images, runs, strict=True):
        if f.length != r["length"]:
            raise ValueError(f"image feature of {f.length} tokens placed on a run of {r['length']}")
    return {"mm_hashes": {"image": [f.mm_hash for f in images]},
            "mm_placeholders": {"image": [{"offset": int(r["offset"]), "length": int(r["length"])} for r in runs]},
            "kwargs_data": {"image": [f.kwargs for f in images]}}


def image_content_part(data_url: str, key: str) -> dict[str, str]:
    """One image of a `content_parts` generate request: the PNG data URL and a content key as the item's `uuid`
    (vLLM uses it as the image's hash: its processor cache skips re-processing an image it has seen)."""
    return {"type": "image_url", "url": data_url, "uuid": key}


def generate_request_body(model: str, token_ids: Sequence[int], features: Mapping[str, Any] | None,
                          sampling: Mapping[str, Any], request_id: str, *,
                          content_parts: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The `/inference/v1/generate` request (JSON). Either `content_parts` (the raw images; `token_ids` then
    UNEXPANDED, one placeholder per image: the server's renderer expands them) or `features` (pre-processed image
    tensors; `token_ids` then EXPANDED), never both (vLLM 0.31 rejects that); no images: neither."""
    if features is not None and content_parts:
        raise ValueError("content_parts and features are mutually exclusive")
    params = dict(sampling)
    params["logit_bias"] = {str(k): v for k, v in (params.get("logit_bias") or {}).items()}
    params["output_kind"] = FINAL_ONLY
    body: dict[str, Any] = {"request_id": request_id, "model": model, "token_ids": [int(t) for t in token_ids],
                            "sampling_params": params}
    if features is not None:
        body["features"] = dict(features)
    if content_parts:
        body["content_parts"] = [dict(p) for p in content_parts]
    return body


class VLLMServerEngine(TokenEngine):
    """A `TokenEngine` over a `vllm serve` process (see the module docstring)."""

    name = "vllm_server"
    logprobs_after_truncation = True  # the server runs with --logprobs-mode processed_logprobs
    weight_sync = "main_process"

    def __init__(self, base_url: str, processor: Any, *, model: str | None = None, timeout_s: float = 900.0,
                 connect_timeout_s: float = 10.0, max_retries: int = 3, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 30.0, max_concurrency: int = 512, seed: int = 0,
                 banned_tokens: Sequence[str] = BANNED_TOKENS, extra_eos: Sequence[int] = (),
                 check_image_tokens: bool = True, feature_cache_mb: float = 2048.0, group_port: int = 51216,
                 server_wait_s: float = 240.0, image_transport: str = "content_parts") -> None:
        """
        base_url: the server root, e.g. `http://gpu-node:8000` (no `/v1`).
        processor: the trainer's processor (chat template, tokenizer, image settings to check against).
        model: the served model name; None: the first one `/v1/models` lists.
        timeout_s / connect_timeout_s: per HTTP attempt (a long generation is one attempt).
        max_retries / backoff_base_s / backoff_max_s: retries of transient failures (`http_retry`).
        max_concurrency: HTTP requests in flight at most (vLLM batches whatever is in flight).
        seed: derives request seeds when a request has none.
        banned_tokens: tokens that can never be sampled.
        extra_eos: further token ids the server stops on (the model's generation_config EOS ids).
        check_image_tokens: verify the server's token count of every image (features) or of every expanded prompt
            (content_parts) against `processor`.
        feature_cache_mb: bound of the per-image client cache (PNG data URLs, or processed tensors for features).
        group_port: TCP port of the NCCL weight-transfer rendezvous (on the trainer's host).
        server_wait_s: how long `init_weight_sync` waits for the server to be up.
        image_transport: "content_parts" (default: unexpanded ids + PNG images, the server processes them) or
            "features" (the render step, then expanded ids + processed tensors); module docstring.
        """
        if image_transport not in IMAGE_TRANSPORTS:
            raise ValueError(f"unknown image_transport {image_transport!r}; valid: {', '.join(IMAGE_TRANSPORTS)}")
        self.image_transport = image_transport
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1"):
            self.base_url = self.base_url[: -len("/v1")]
        self._processor = processor
        self._tokenizer = getattr(processor, "tokenizer", processor)
        self.layout = TokenLayout.from_tokenizer(self._tokenizer, extra_eos=extra_eos, banned_tokens=banned_tokens)
        self.model = model
        self.timeout = httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s))
        self.policy = RetryPolicy(max_retries=max_retries, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s)
        self.max_concurrency = max_concurrency
        self.seed = seed
        self.check_image_tokens = check_image_tokens
        self.feature_cache_bytes = int(feature_cache_mb * 2**20)
        self.group_port = group_port
        self.server_wait_s = server_wait_s
        self.weights_version = 0
        self.counts = {"requests": 0, "renders": 0, "feature_cache_hits": 0, "retries": 0, "png_encodes": 0}
        self._counter = 0
        self._inflight = 0
        self._features: OrderedDict[str, ImageFeature] = OrderedDict()
        self._feature_bytes = 0
        self._pending: dict[str, asyncio.Future[ImageFeature]] = {}
        self._expected_tokens: dict[str, int] = {}  # image key -> tokens the trainer's processor gives it
        self._urls: OrderedDict[str, str] = OrderedDict()  # image key -> PNG data URL (content_parts)
        self._url_bytes = 0
        self._rng = random.Random(seed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._slot: asyncio.Semaphore | None = None
        self._model_lock: asyncio.Lock | None = None
        self._weights: Any = None  # trl VLLMClient, once init_weight_sync ran
        self._weight_metadata: list[tuple[str, str, list[int]]] | None = None
        self._sync_lock = threading.Lock()

    # ---- TokenEngine ---------------------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def processor(self) -> Any:
        return self._processor

    @property
    def stats(self) -> dict[str, int]:
        return {**self.counts, "weights_version": self.weights_version}

    async def generate(self, prompt_ids: list[int], images: list[np.ndarray], sampling: SamplingParams) -> GenerateOutput:
        positions = check_unexpanded_prompt(prompt_ids, len(images), self.layout)
        seed = request_seed(self.seed, self._counter, sampling)
        self._counter += 1
        self._inflight += 1
        try:
            client, slot = self._client_for_loop()
            model = await self._served_model(client)
            params = sampling_kwargs(sampling, seed=seed, banned_ids=self.layout.banned, stop_token_ids=self.layout.eos)
            request_id = f"codevl-{uuid.uuid4().hex}"
            want: int | None = None
            if self.image_transport == "content_parts":
                keys = [await asyncio.to_thread(image_key, im) for im in images]
                parts = [image_content_part(await self._data_url(k, im), k) for k, im in zip(keys, images, strict=True)]
                if self.check_image_tokens:
                    want = len(prompt_ids) - len(images) + sum(
                        [await self._image_tokens(k, im) for k, im in zip(keys, images, strict=True)])
                body = generate_request_body(model, prompt_ids, None, params, request_id, content_parts=parts)
            else:
                feats = list(await asyncio.gather(*(self._image_feature(client, slot, model, im) for im in images)))
                ids, runs = expand_for_features(prompt_ids, positions, [f.length for f in feats],
                                                self.layout.image_pad)
                want = len(ids)
                body = generate_request_body(model, ids, request_features(feats, runs), params, request_id)
            version = self.weights_version
            self.counts["requests"] += 1
            answer = await post_json(client, f"{self.base_url}/inference/v1/generate", body, policy=self.policy,
                                     timeout=self.timeout, slot=slot, rng=self._rng, on_retry=self._on_retry,
                                     hint_4xx=_scale_out_hint)
        finally:
            self._inflight -= 1
        choices = answer.get("choices") if isinstance(answer, Mapping) else None
        if not choices:
            raise EngineError(f"the generate answer has no choices: {str(answer)[:300]}")
        usage = answer.get("usage") if isinstance(answer.get("usage"), Mapping) else {}
        got = usage.get("prompt_tokens")
        if want is not None and got is not None and int(got) != want:
            raise EngineError(
                f"the server expanded the prompt to {int(got)} tokens, the trainer's processor to {want}: the two "
                "process images differently; give vllm serve the trainer's min_pixels/max_pixels "
                "(--mm-processor-kwargs), or rollouts and training see different images")
        meta = {"engine": self.name, "weights_version": version, "seed": seed,
                "prompt_tokens_expanded": int(got) if got is not None else want}
        return build_output(completion_from_json(choices[0]), tokenizer=self._tokenizer, eos_ids=self.layout.eos,
                            sampling=sampling, metadata=meta)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client, self._slot, self._loop, self._model_lock = None, None, None, None

    # ---- weight sync (trainer's main process; synchronous) -------------------------------------------------

    def init_weight_sync(self, device: Any = 0) -> None:
        """Join the server's NCCL weight-transfer group (as rank 0) from `device` (a CUDA device of this process).
        Needs vLLM importable here (TRL's client uses its NCCL helpers)."""
        install = ("weight sync with a vLLM server runs TRL's VLLMClient, which needs vLLM (and requests, which vLLM "
                   "brings) in the trainer's environment: install the `vllm` extra on a GPU node: "
                   "CODEVL_EXTRAS=dev,deepspeed,vllm bash scripts/install.sh")
        try:
            from trl.generation.vllm_client import VLLMClient

            client = VLLMClient(base_url=self.base_url, group_port=self.group_port,
                                connection_timeout=self.server_wait_s)
        except ImportError as exc:
            raise ImportError(f"{exc} ({install})") from exc
        client.init_communicator(device=device)
        self._weights = client

    def update_weights(self, named_tensors: Iterable[tuple[str, Any]], *,
                       metadata: Sequence[tuple[str, str, Sequence[int]]] | None = None) -> int:
        """Broadcast new weights (Hugging Face names, e.g. from the unwrapped model's `named_parameters()`) to the
        server, then reset its prefix, multimodal and encoder caches. The server must know every tensor before the
        first is sent: pass `metadata` (`(name, dtype, shape)` in streaming order, dtype like "bfloat16") or it
        is taken from the previous call, or, the first time, by materialising `named_tensors` (holding references
        to all of them). Returns the new `weights_version`."""
        if self._weights is None:
            raise RuntimeError("call init_weight_sync(device) first (once, on the trainer's main process)")
        if self._inflight:
            raise EngineError(f"{self._inflight} generation request(s) in flight: update weights between rollouts")
        with self._sync_lock:
            meta = [(str(n), str(d), [int(s) for s in shape]) for n, d, shape in metadata] if metadata else None
            stream: Iterable[tuple[str, Any]] = named_tensors
            if meta is None and self._weight_metadata is None:
                stream = list(named_tensors)
                meta = [(n, str(t.dtype).removeprefix("torch."), list(t.shape)) for n, t in stream]
            meta = meta or self._weight_metadata
            assert meta is not None
            if not meta:
                raise ValueError("update_weights got no tensors")
            with self._weights.weight_update():
                self._weights.update_named_params(meta, _checked(stream, meta))
            self._weight_metadata = meta
            self.reset_caches()
            self.weights_version += 1
            logger.info("vllm_server: pushed %d tensors, weights_version=%d", len(meta), self.weights_version)
            return self.weights_version

    def reset_caches(self) -> None:
        """Reset the server's prefix, multimodal and encoder caches and forget cached image features."""
        with httpx.Client(timeout=httpx.Timeout(120.0, connect=10.0)) as http:
            for path in RESET_ENDPOINTS:
                r = http.post(f"{self.base_url}{path}")
                if r.status_code != 200:
                    hint = " (start the server with VLLM_SERVER_DEV_MODE=1)" if r.status_code == 404 else ""
                    raise RuntimeError(f"POST {path} failed with HTTP {r.status_code}: {error_message(r)}{hint}")
                if path == "/reset_prefix_cache" and r.content:
                    body = r.json()
                    if isinstance(body, dict) and body.get("success") is False:
                        raise RuntimeError("the server refused to reset its prefix cache (requests still running?)")
        self._features.clear()
        self._feature_bytes = 0

    def close_weight_sync(self) -> None:
        if self._weights is not None:
            self._weights.close_communicator()
            self._weights = None

    # ---- internals -----------------------------------------------------------------------------------------

    def _on_retry(self, attempt: int, reason: str, delay: float) -> None:
        self.counts["retries"] += 1
        logger.info("vllm_server: retry %d in %.1fs after %s", attempt, delay, reason)

    def _client_for_loop(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._client is None or self._slot is None:
            self._loop = loop
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=httpx.Limits(
                max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency))
            self._slot = asyncio.Semaphore(self.max_concurrency)
            self._model_lock = asyncio.Lock()
            self._pending = {}
        return self._client, self._slot

    async def _served_model(self, client: httpx.AsyncClient) -> str:
        if self.model is not None:
            return self.model
        assert self._model_lock is not None
        async with self._model_lock:
            if self.model is None:
                try:
                    r = await client.get(f"{self.base_url}/v1/models", timeout=self.timeout)
                    r.raise_for_status()
                    self.model = str(r.json()["data"][0]["id"])
                except (httpx.HTTPError, KeyError, IndexError, ValueError) as exc:
                    raise EngineError(f"cannot list the models served at {self.base_url}/v1/models: {exc}") from exc
        return self.model

    async def _image_feature(self, client: httpx.AsyncClient, slot: asyncio.Semaphore, model: str,
                             image: Any) -> ImageFeature:
        key = await asyncio.to_thread(image_key, image)
        hit = self._features.get(key)
        if hit is not None:
            self._features.move_to_end(key)
            self.counts["feature_cache_hits"] += 1
            return hit
        pending = self._pending.get(key)
        if pending is not None:  # the same image is being rendered for another request (the G rollouts of a group)
            return await asyncio.shield(pending)
        fut: asyncio.Future[ImageFeature] = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        try:
            url = await asyncio.to_thread(png_data_url, image)
            self.counts["renders"] += 1
            answer = await post_json(client, f"{self.base_url}/v1/chat/completions/render",
                                     render_request_body(model, url), policy=self.policy, timeout=self.timeout,
                                     slot=slot, rng=self._rng, on_retry=self._on_retry, hint_4xx=_scale_out_hint)
            feat = image_feature_from_render(answer)
            if self.check_image_tokens:
                expected = await asyncio.to_thread(processor_image_tokens, self._processor, image)
                if expected is not None and expected != feat.length:
                    h, w = np.asarray(image).shape[:2]
                    raise EngineError(
                        f"the server's image processor gives {feat.length} tokens for a {w}x{h} image, the trainer's "
                        f"processor {expected}: align min_pixels/max_pixels (vllm serve --mm-processor-kwargs) with "
                        "the processor the trainer uses, or rollouts and training see different images")
            if feat.kwargs is not None:
                self._remember(key, feat)
            fut.set_result(feat)
            return feat
        except BaseException as exc:
            fut.set_exception(exc if isinstance(exc, Exception) else EngineError(repr(exc)))
            fut.exception()  # retrieved: waiters get it, no "never retrieved" warning
            raise
        finally:
            self._pending.pop(key, None)

    async def _data_url(self, key: str, image: Any) -> str:
        """The image as a PNG data URL, encoded once per image (LRU, bounded by `feature_cache_mb`)."""
        hit = self._urls.get(key)
        if hit is not None:
            self._urls.move_to_end(key)
            return hit
        url = await asyncio.to_thread(partial(png_data_url, compress_level=PNG_COMPRESS_LEVEL), image)
        self.counts["png_encodes"] += 1
        self._urls[key] = url
        self._url_bytes += len(url)
        while self._url_bytes > self.feature_cache_bytes and len(self._urls) > 1:
            _, old = self._urls.popitem(last=False)
            self._url_bytes -= len(old)
        return url

    async def _image_tokens(self, key: str, image: Any) -> int:
        """How many placeholder tokens the trainer's processor gives `image` (cached per image)."""
        n = self._expected_tokens.get(key)
        if n is None:
            got = await asyncio.to_thread(processor_image_tokens, self._processor, image)
            if got is None:
                raise EngineError("the trainer's processor cannot say how many tokens an image takes; pass "
                                  "check_image_tokens=False to skip the check")
            n = int(got)
            if len(self._expected_tokens) >= 100_000:
                self._expected_tokens.clear()
            self._expected_tokens[key] = n
        return n

    def _remember(self, key: str, feat: ImageFeature) -> None:
        self._features[key] = feat
        self._feature_bytes += feat.nbytes
        while self._feature_bytes > self.feature_cache_bytes and len(self._features) > 1:
            _, old = self._features.popitem(last=False)
            self._feature_bytes -= old.nbytes


def _scale_out_hint(status: int) -> str:
    if status == 404:
        return (" (the server does not serve /v1/chat/completions/render and /inference/v1/generate: start it with "
                "--enable-scale-out, vLLM >= 0.30; see rollout/engines/vllm_server.py or scripts/vllm_server.sh)")
    return ""


def _checked(stream: Iterable[tuple[str, Any]], meta: Sequence[tuple[str, str, Sequence[int]]]) -> Iterator[tuple[str, Any]]:
    """Yield `stream`, checking each tensor against the announced metadata (a mismatch would corrupt weights)."""
    n = 0
    for name, tensor in stream:
        if n >= len(meta):
            raise RuntimeError(f"more tensors streamed than the {len(meta)} announced (first extra: {name})")
        m_name, m_dtype, m_shape = meta[n]
        dtype = str(tensor.dtype).removeprefix("torch.")
        if name != m_name or dtype != m_dtype or list(tensor.shape) != list(m_shape):
            raise RuntimeError(f"weight {n} is {name} {dtype} {list(tensor.shape)} but {m_name} {m_dtype} "
                               f"{list(m_shape)} was announced: stream the same tensors in the same order every time")
        n += 1
        yield name, tensor
    if n != len(meta):
        raise RuntimeError(f"{n} tensors streamed but {len(meta)} announced")
