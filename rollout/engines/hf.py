"""Generation with Hugging Face transformers (CPU or GPU): the engine of tests, the demo and small runs.

    model, processor = train.model.loading.load_model(ModelConfig(name_or_path="runs/tiny-qwen2_5_vl"))
    engine = HFEngine(model, processor)
    out = await engine.generate(prompt_ids, images, SamplingParams(max_new_tokens=256, stop=("</code>",)))

Concurrent requests are batched (`MicroBatcher`): left padding, one `model.generate` per batch on the engine's
own thread (bound to the model's CUDA device: `rollout.engines.device_thread`), so the event loop keeps running
sandbox work meanwhile. Prompts arrive unexpanded and are expanded here with the
model's own image processor (`rollout.expand`), each image once (`rollout.image_cache`: later turns and the other
rollouts of a group reuse its pixel values). Image/video placeholder and vision-boundary tokens are suppressed
so the policy can never sample them (docs/methods.md, "Pitfalls"). Logprobs are `log_softmax(logits / temperature)` of
the sampled token over the full vocabulary, before top-p/top-k truncation and token suppression: the same
quantity a training forward pass computes, so the two match (tested to 1e-4 in fp32). Sampling is per request:
each row draws from its own counter-based random stream keyed by the request's seed (`rollout.engines.hf_sampler`),
so a request samples the same tokens whichever requests share its batch (the concurrent loop's batches depend on
timing).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollout.engines.base import EngineError, GenerateOutput, SamplingParams, TokenEngine, cut_at_stop
from rollout.engines.batcher import MicroBatcher
from rollout.engines.device_thread import DeviceThread
from rollout.expand import expand_sequence
from rollout.image_cache import ProcessedImages

logger = logging.getLogger(__name__)

BANNED_TOKENS: tuple[str, ...] = ("<|image_pad|>", "<|video_pad|>", "<|vision_pad|>", "<|vision_start|>", "<|vision_end|>")


@dataclass
class _Request:
    prompt_ids: list[int]
    images: list[Any]
    sampling: SamplingParams


def _no_binding(index: int) -> None:
    """A CPU model's engine thread needs no device."""


def special_token_ids(tokenizer: Any, names: Sequence[str]) -> list[int]:
    """Ids of the named tokens that exist in the vocabulary (unknown names are skipped)."""
    out = []
    unk = tokenizer.unk_token_id
    for name in names:
        i = tokenizer.convert_tokens_to_ids(name)
        if isinstance(i, int) and i >= 0 and i != unk:
            out.append(i)
    return out


class HFEngine(TokenEngine):
    """Generation with the trainer's own module (module docstring). It shares the policy's weights, so weight
    sync copies nothing: the trainer calls `weights_updated()` after each optimizer step (what
    `train.weight_sync.push_weights` does for this engine), and every output carries the `weights_version` it was
    sampled with."""

    name = "hf"
    logprobs_after_truncation = False  # log_softmax(raw logits / T) over the full vocabulary (module docstring)
    weight_sync = "shared"

    def __init__(self, model: Any, processor: Any, *, max_batch_size: int = 16, wait_s: float = 0.002,
                 banned_tokens: Sequence[str] = BANNED_TOKENS, image_cache_gib: float = 4.0) -> None:
        """`image_cache_gib`: host memory for processed images (fp32 pixel values: ~23 MiB per image at Qwen2.5-VL's
        1280 vision tokens), least recently used first out; an RL step's input images and the crops of its episodes
        should fit, or later turns process them again."""
        self.model = model
        self._processor = processor
        self._images = ProcessedImages(processor, max_bytes=int(image_cache_gib * (1 << 30)))
        self._tokenizer = processor.tokenizer
        tok = self._tokenizer
        self.banned_ids = special_token_ids(tok, banned_tokens)
        eos = set(special_token_ids(tok, ["<|im_end|>"]))
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if isinstance(gen_eos, int):
            eos.add(gen_eos)
        elif gen_eos:
            eos.update(int(e) for e in gen_eos)
        if tok.eos_token_id is not None:
            eos.add(int(tok.eos_token_id))
        self.eos_ids = sorted(eos)
        self.pad_id = int(tok.pad_token_id if tok.pad_token_id is not None else self.eos_ids[0])
        self.weights_version = 0
        # Batches run on one thread bound to the model's CUDA device (the device is per thread: a pool thread
        # would default to cuda:0 on every rank); on CPU the binding is a no-op.
        device = next(model.parameters()).device
        if device.type == "cuda":
            self._thread = DeviceThread(device.index if device.index is not None else 0, name="hf-engine")
        else:
            self._thread = DeviceThread(0, bind=_no_binding, name="hf-engine")
        self._batcher: MicroBatcher[_Request, GenerateOutput] = MicroBatcher(
            self._run_batch, max_batch_size=max_batch_size, wait_s=wait_s, name="hf",
            executor=self._thread.executor)

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def processor(self) -> Any:
        return self._processor

    @property
    def image_cache(self) -> ProcessedImages:
        """The processed pixels of every image this engine has seen (the trainer reuses them for the update)."""
        return self._images

    @property
    def stats(self) -> dict[str, int]:
        return {"batches": self._batcher.batches, "requests": self._batcher.requests,
                "images_processed": self._images.misses, "images_reused": self._images.hits,
                "episodes_in_flight": self._batcher.in_flight, "weights_version": self.weights_version}

    async def generate(self, prompt_ids: list[int], images: list[np.ndarray], sampling: SamplingParams) -> GenerateOutput:
        return await self._batcher.submit(_Request(list(prompt_ids), list(images), sampling))

    def episode_started(self) -> None:
        self._batcher.episode_started()

    def episode_finished(self) -> None:
        self._batcher.episode_finished()

    async def aclose(self) -> None:
        await self._batcher.aclose()

    # ---- backend (runs in the batcher's worker thread) -----------------------------------------------------

    def _run_batch(self, requests: list[_Request]) -> list[GenerateOutput]:
        groups: dict[tuple[Any, ...], list[int]] = {}
        for i, r in enumerate(requests):
            s = r.sampling
            groups.setdefault((s.temperature, s.top_p, s.top_k, s.stop), []).append(i)
        outs: list[GenerateOutput | None] = [None] * len(requests)
        for idx in groups.values():
            try:
                for i, o in zip(idx, self._generate_group([requests[i] for i in idx]), strict=True):
                    outs[i] = o
            except ValueError as exc:
                raise EngineError(str(exc)) from exc
        return [o for o in outs if o is not None]

    def _generate_group(self, reqs: list[_Request]) -> list[GenerateOutput]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        from rollout.engines.hf_sampler import PerRowSampler

        version = self.weights_version  # read before generating: the weights this batch is sampled with

        device = next(self.model.parameters()).device
        expanded = [expand_sequence(r.prompt_ids, r.images, self._processor, **self._pixels(r.images)) for r in reqs]
        width = max(len(e.input_ids) for e in expanded)
        input_ids = torch.full((len(reqs), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(reqs), width), dtype=torch.long)
        mm_types = torch.zeros((len(reqs), width), dtype=torch.long)
        for i, e in enumerate(expanded):
            n = len(e.input_ids)
            input_ids[i, width - n:] = torch.tensor(e.input_ids, dtype=torch.long)
            attention[i, width - n:] = 1
            mm_types[i, width - n:] = torch.tensor(e.mm_token_type_ids, dtype=torch.long)
        kwargs: dict[str, Any] = {"input_ids": input_ids.to(device), "attention_mask": attention.to(device),
                                  "mm_token_type_ids": mm_types.to(device)}
        pv = [e.pixel_values for e in expanded if e.pixel_values is not None]
        if pv:
            kwargs["pixel_values"] = torch.cat(pv).to(device=device, dtype=self.model.dtype)
            kwargs["image_grid_thw"] = torch.cat([e.image_grid_thw for e in expanded if e.image_grid_thw is not None]).to(device)
        s = reqs[0].sampling
        max_new = max(r.sampling.max_new_tokens for r in reqs)
        # Greedy decoding of the sampler's one-hot scores (or of the logits when greedy): no global RNG involved.
        gen = GenerationConfig(
            max_new_tokens=max_new, do_sample=False, temperature=None, top_p=None, top_k=None,
            eos_token_id=self.eos_ids, pad_token_id=self.pad_id, suppress_tokens=self.banned_ids or None,
            stop_strings=list(s.stop) or None, output_logits=True, return_dict_in_generate=True,
        )
        processors = None
        if not s.greedy:
            processors = LogitsProcessorList([PerRowSampler(
                [r.sampling.seed for r in reqs], temperature=s.temperature, top_p=s.top_p, top_k=s.top_k, device=device)])
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                out = self.model.generate(**kwargs, generation_config=gen, tokenizer=self._tokenizer,
                                          logits_processor=processors)
        finally:
            self.model.train(was_training)
        sampled = out.sequences[:, width:]
        scale = 1.0 if s.greedy else s.temperature
        # One (batch, vocab) step at a time on the model's device, keeping only the sampled token's logprob: never
        # a (batch, steps, vocab) copy (gigabytes at a real vocabulary) or a CPU transfer of the logits.
        picked = torch.stack([torch.log_softmax(step.float() / scale, dim=-1).gather(-1, sampled[:, t:t + 1])[:, 0]
                              for t, step in enumerate(out.logits)], dim=1).cpu()
        new = sampled.cpu()
        results = []
        for i, r in enumerate(reqs):
            ids = new[i].tolist()
            cut, finish, reason = self._trim(ids, r.sampling)
            ids = ids[:cut]
            lps = picked[i, :cut].tolist()
            text = self._text(ids, r.sampling.stop)
            results.append(GenerateOutput(token_ids=ids, logprobs=lps, finish_reason=finish, text=text,  # type: ignore[arg-type]
                                          stop_reason=reason,
                                          metadata={"engine": self.name, "weights_version": version}))
        return results

    def _pixels(self, images: Sequence[Any]) -> dict[str, Any]:
        """`expand_sequence`'s precomputed pixel values and grid for `images`, each processed once (cached)."""
        pixel_values, grid = self._images(images)
        return {"pixel_values": pixel_values, "image_grid_thw": grid}

    def _decode(self, ids: Sequence[int]) -> str:
        return self._tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def _trim(self, ids: list[int], sampling: SamplingParams) -> tuple[int, str, str | None]:
        """Where this sequence really ended: after its first EOS, after the token completing a stop string, or
        at its own max_new_tokens (the batch may have run longer for other requests)."""
        limit = min(len(ids), sampling.max_new_tokens)
        eos_at = next((k for k, t in enumerate(ids[:limit]) if t in self.eos_ids), None)
        end = limit if eos_at is None else eos_at + 1
        stop_end, stop = self._stop_end(ids[:end], sampling.stop)
        if stop_end is not None and (eos_at is None or stop_end <= eos_at):
            return stop_end, "stop", stop
        if eos_at is not None:
            return eos_at + 1, "stop", self._decode([ids[eos_at]])
        return limit, "length", None

    def _stop_end(self, ids: list[int], stops: tuple[str, ...]) -> tuple[int | None, str | None]:
        """Smallest k such that decode(ids[:k]) contains a stop string (binary search; containment is monotone)."""
        if not stops or not ids:
            return None, None
        _, fired = cut_at_stop(self._decode(ids), stops)
        if fired is None:
            return None, None
        lo, hi = 1, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if cut_at_stop(self._decode(ids[:mid]), stops)[1] is not None:
                hi = mid
            else:
                lo = mid + 1
        return lo, cut_at_stop(self._decode(ids[:lo]), stops)[1]

    def _text(self, ids: list[int], stops: tuple[str, ...]) -> str:
        body = ids[:-1] if ids and ids[-1] in self.eos_ids else ids
        text, _ = cut_at_stop(self._decode(body), stops)
        return text
