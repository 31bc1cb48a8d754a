"""What the training stages need from the process group: who runs on the CPU, gathering small Python lists,
DeepSpeed's "auto" settings filled from the run config, and full ZeRO-3 weights while the policy generates.

`cpu_only()`: accelerate's `MULTI_CPU` launch type needs an MPI launcher, so the 2-process CPU config
(`configs/accelerate/cpu_2proc.yaml`) starts processes through `torch.distributed.run`; without a GPU each process
must then ask for the CPU itself to join a gloo process group instead of running alone. Under DeepSpeed, whose CPU
accelerator sets up its own group, it must not (asking for the CPU would switch DeepSpeed off).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _deepspeed_launch() -> bool:
    return os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() in ("1", "true", "yes")


def cpu_only() -> bool:
    """True where there is no GPU and the launch is not a DeepSpeed one."""
    import torch

    return not torch.cuda.is_available() and not _deepspeed_launch()


def accelerator_options() -> dict[str, Any]:
    """Keyword arguments for `accelerate.Accelerator` in a training stage.

    `cpu` as `cpu_only()`. DeepSpeed on its CPU accelerator (no GPU) starts a gloo group of all the launched
    processes, but accelerate, finding no GPU backend, counts one process on each: naming gloo makes it count them
    all (with several processes, this is how the ZeRO paths are tested on a machine without a GPU)."""
    import torch

    opts: dict[str, Any] = {"cpu": cpu_only()}
    if _deepspeed_launch() and not torch.cuda.is_available():
        from accelerate.utils import InitProcessGroupKwargs

        opts["kwargs_handlers"] = [InitProcessGroupKwargs(backend="gloo")]
    return opts


def gather_lists(local: list[Any], world: int) -> list[list[Any]]:
    """Every process's `local` list (picklable objects), in rank order."""
    if world == 1:
        return [local]
    from accelerate.utils import gather_object

    return [list(x) for x in gather_object([local])]


def settle_deepspeed(acc: Any, *, max_grad_norm: float, dtype: str) -> None:
    """Under DeepSpeed, fill the config's "auto" values for a trainer that marks its own accumulation boundaries:
    one optimizer step per mini-batch of any number of micro-batches (the last one is the boundary), clipping at
    `optim.max_grad_norm` (the one place it is set), precision from the model's dtype."""
    plugin = getattr(acc.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    ds = plugin.deepspeed_config
    ds["train_micro_batch_size_per_gpu"] = 1
    ds["gradient_accumulation_steps"] = 1
    ds["train_batch_size"] = acc.num_processes
    ds["gradient_clipping"] = max_grad_norm
    for key, on in (("bf16", dtype == "bfloat16"), ("fp16", dtype == "float16")):
        if isinstance(ds.get(key), dict) and ds[key].get("enabled") == "auto":
            ds[key]["enabled"] = on
    zero = ds.get("zero_optimization", {})
    for key in [k for k, v in zero.items() if v == "auto"]:
        zero.pop(key)  # DeepSpeed's own defaults


def zero_stage(acc: Any) -> int:
    """The DeepSpeed ZeRO stage of this launch (0 without DeepSpeed)."""
    plugin = getattr(acc.state, "deepspeed_plugin", None)
    return int(plugin.zero_stage) if plugin is not None else 0


@contextmanager
def full_weights_for_generation(model: Any, acc: Any) -> Iterator[None]:
    """Under ZeRO-3, the policy's full weights on every process for the body, with DeepSpeed's forward hooks off.

    A ZeRO-3 module gathers each layer's shards in a forward hook, a collective every process must join; episodes
    end at different turns on different processes, so a policy that generates (the HF engine shares the module)
    would call those collectives a different number of times per process and hang. Gathering everything once (as
    TRL's `unwrap_model_for_generation` does) makes generation local: each process holds the full weights (bf16: 2
    bytes per parameter) for the rollout only. Without ZeRO-3 this does nothing.
    """
    if zero_stage(acc) != 3:
        yield
        return
    import deepspeed
    from trl.models.utils import add_hooks, remove_hooks

    with deepspeed.zero.GatheredParameters(list(model.parameters())):
        remove_hooks(model)
        try:
            yield
        finally:
            add_hooks(model)
