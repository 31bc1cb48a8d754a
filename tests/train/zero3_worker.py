"""Worker for tests/train/test_weight_sync.py: `hf_weights` on a model really partitioned by DeepSpeed ZeRO-3.

Runs in its own process (DeepSpeed and torch.distributed keep global state): one rank; on "cpu", gloo and
DeepSpeed's CPU accelerator; on "cuda", NCCL and the CUDA accelerator (tests/train/test_weight_sync_gpu.py). The model is the offline tiny Qwen-VL with a LoRA adapter whose B matrices are made non-zero, so the
merge matters. The reference is PEFT's own `merge_and_unload` of an unpartitioned copy. Prints one JSON line.

    python tests/train/zero3_worker.py MODEL_DIR PORT [cpu|cuda]
"""

from __future__ import annotations

import copy
import json
import os
import sys


def main(model_dir: str, port: str, device: str = "cpu") -> None:
    os.environ.update(DS_ACCELERATOR=device, MASTER_ADDR="127.0.0.1", MASTER_PORT=port, RANK="0", LOCAL_RANK="0",
                      WORLD_SIZE="1")
    import deepspeed
    import deepspeed.ops
    import torch
    from deepspeed.accelerator import get_accelerator
    from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus

    if device == "cuda":
        torch.cuda.set_device(0)
    torch.distributed.init_process_group("nccl" if device == "cuda" else "gloo", rank=0, world_size=1)
    # DeepSpeed's CPU accelerator would JIT-compile a shared-memory allreduce (~45 s, once per machine) that a
    # one-process gather never uses.
    builder = get_accelerator().create_op_builder("ShareMemCommBuilder")
    if builder is not None:
        deepspeed.ops.__compatible_ops__[builder.NAME] = False

    from train.config.model import LoraConfig, ModelConfig
    from train.model.loading import load_model
    from train.weight_sync import hf_weights, weight_metadata

    model, _ = load_model(ModelConfig(name_or_path=model_dir, dtype="float32", attn_implementation="eager",
                                      freeze_vision_tower=False, freeze_projector=False,
                                      lora=LoraConfig(r=4, alpha=8, dropout=0.0)))
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    base_q = "base_model.model.model.language_model.layers.0.self_attn.q_proj.base_layer.weight"
    base_q_weight = dict(model.named_parameters())[base_q].detach().clone()
    reference = {n: p.detach().clone() for n, p in copy.deepcopy(model).merge_and_unload().named_parameters()}
    merged_q = reference["model.language_model.layers.0.self_attn.q_proj.weight"]
    merge_effect = float((merged_q - base_q_weight).abs().max())

    config = {"train_micro_batch_size_per_gpu": 1,
              "zero_optimization": {"stage": 3, "stage3_param_persistence_threshold": 0}}
    engine, *_ = deepspeed.initialize(model=model, config=config)
    params = list(engine.module.parameters())
    partitioned = sum(1 for p in params if p.numel() == 0 and hasattr(p, "ds_shape"))

    def available() -> int:
        return sum(1 for p in params if p.ds_status == ZeroParamStatus.AVAILABLE)

    pushed: dict[str, torch.Tensor] = {}
    order: list[str] = []
    most_available = 0
    device_seen: list[str] = []
    for name, tensor in hf_weights(engine):  # the DeepSpeed engine itself: `module.` unwrapped
        most_available = max(most_available, available())
        device_seen.append(str(tensor.device))
        pushed[name] = tensor.detach().cpu().clone()
        order.append(name)
    after = available()
    meta = weight_metadata(engine)
    diffs = {n: float((pushed[n].cpu() - reference[n].cpu()).abs().max()) for n in reference if n in pushed}
    print(json.dumps({
        "params": len(params), "partitioned": partitioned, "most_available": most_available, "after": after,
        "pushed": order, "reference": list(reference), "max_diff": max(diffs.values()) if diffs else None,
        "meta_matches": meta == [(n, str(pushed[n].dtype).removeprefix("torch."), list(pushed[n].shape))
                                 for n in order],
        "merge_effect": merge_effect, "device": str(next(iter(pushed.values())).device) if pushed else None,
        "source_device": device_seen[0] if device_seen else None,
    }))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    main(*sys.argv[1:4])
