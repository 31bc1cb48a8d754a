"""Generation engines behind one interface (`rollout.engines.base`): token-level for RL, chat-level for inference."""

from rollout.engines.base import (
    ChatEngine,
    ChatOutput,
    EngineError,
    GenerateOutput,
    SamplingParams,
    TokenEngine,
    cut_at_stop,
    trainer_logprob_mismatch,
)

__all__ = ["ChatEngine", "ChatOutput", "EngineError", "GenerateOutput", "SamplingParams", "TokenEngine", "cut_at_stop",
           "trainer_logprob_mismatch"]
