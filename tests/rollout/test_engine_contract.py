"""The engine contract of rollout.engines.base: SamplingParams rejects what vLLM 0.31 would reject (at construction,
not as an engine_error per request), every engine states its logprob semantics and weight-sync kind, and
`trainer_logprob_mismatch` flags truncated sampling with an engine whose logprobs are taken after truncation.
"""

from __future__ import annotations

import math

import pytest

from rollout.engines.base import (
    MAX_TEMPERATURE,
    MIN_SAMPLING_TEMPERATURE,
    WEIGHT_SYNC_KINDS,
    SamplingParams,
    TokenEngine,
    trainer_logprob_mismatch,
)
from rollout.engines.registry import ENGINE_SPECS


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"temperature": 2.5}, r"temperature must be in \[0, 2\]"),
    ({"temperature": -0.1}, r"temperature must be in \[0, 2\]"),
    ({"temperature": math.inf}, "finite"),
    ({"temperature": math.nan}, "finite"),
    ({"temperature": 0.005}, "at least 0.01"),  # vLLM would silently sample (and score) at 0.01
    ({"top_p": 0.0}, r"top_p must be in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must be in \(0, 1\]"),
    ({"top_k": -1}, "top_k must be an integer >= 0"),
    ({"top_k": 2.5}, "top_k must be an integer >= 0"),
    ({"max_new_tokens": 0}, "max_new_tokens must be a positive integer"),
    ({"max_new_tokens": 1.5}, "max_new_tokens must be a positive integer"),
    ({"stop": ("</code>", "")}, "stop strings must be non-empty"),
    ({"stop": "</code>"}, r"not one string: use stop=\('</code>',\)"),
    ({"seed": -3}, "seed must be None or an integer"),
    ({"seed": 2**63}, "seed must be None or an integer"),
])
def test_sampling_params_reject_what_vllm_rejects(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SamplingParams(**kwargs)


def test_sampling_params_accept_the_bounds() -> None:
    assert SamplingParams(temperature=0).greedy
    assert SamplingParams(temperature=MAX_TEMPERATURE).temperature == 2.0
    assert SamplingParams(temperature=MIN_SAMPLING_TEMPERATURE, top_p=1.0, top_k=0, seed=0).seed == 0
    assert SamplingParams(seed=2**63 - 1, stop=("</code>",)).stop == ("</code>",)
    assert not SamplingParams(top_p=1.0, top_k=0).truncated
    assert SamplingParams(top_p=0.9).truncated and SamplingParams(top_k=20).truncated
    assert not SamplingParams(temperature=0, top_p=0.9).truncated  # greedy: nothing is sampled


def test_every_token_engine_states_its_logprob_semantics_and_weight_sync() -> None:
    expected = {  # module docstring of rollout.engines.base, "Logprobs" and "Weights"
        "hf": (False, "shared"),
        "vllm_colocate": (True, "per_rank"),
        "vllm_server": (True, "main_process"),
    }
    for kind, (after, sync) in expected.items():
        cls = ENGINE_SPECS[kind].load()
        assert issubclass(cls, TokenEngine)
        assert (cls.logprobs_after_truncation, cls.weight_sync) == (after, sync), kind
        assert ENGINE_SPECS[kind].logprobs_after_truncation is after  # the import-free copy agrees
    for spec in ENGINE_SPECS.values():
        cls = spec.load()
        if spec.token_level:
            assert cls.weight_sync in WEIGHT_SYNC_KINDS and isinstance(cls.logprobs_after_truncation, bool)


def test_trainer_refuses_truncation_only_with_engines_that_score_after_it() -> None:
    vllm_like = ENGINE_SPECS["vllm_colocate"].load()
    hf = ENGINE_SPECS["hf"].load()
    truncated = SamplingParams(top_p=0.95)
    msg = trainer_logprob_mismatch(vllm_like, truncated)
    assert msg is not None and "top_p: 1.0 and top_k: 0" in msg and "vllm_colocate" in msg
    assert trainer_logprob_mismatch(vllm_like, SamplingParams(top_k=50)) is not None
    assert trainer_logprob_mismatch(vllm_like, SamplingParams()) is None  # top_p=1, top_k=0: the same quantity
    assert trainer_logprob_mismatch(hf, truncated) is None  # HF scores before truncation, as the trainer does
    assert trainer_logprob_mismatch(vllm_like, SamplingParams(temperature=0, top_p=0.5)) is None
    spec_msg = trainer_logprob_mismatch(ENGINE_SPECS["vllm_server"], truncated)  # from the registry, nothing imported
    assert spec_msg is not None and "vllm_server engine" in spec_msg
    assert trainer_logprob_mismatch(ENGINE_SPECS["hf"], truncated) is None
