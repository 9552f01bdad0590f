"""Batch generation over many GPUs (one node or a Ray cluster) with Ray Data + vLLM, writing selfimprove
records.

Each Ray Data actor holds one ``VLLMBackend`` (selfimprove's in-process vLLM engine) on
``--tensor-parallel-size`` GPUs; ``--replicas`` actors run side by side and Ray streams the prompts through
them in batches. Every output row keeps the input's ``id`` and ``prompt`` and adds ``completions``: a JSON
list of ``Completion`` records (text, token log-probabilities, finish reason, token counts), the same records
every selfimprove backend returns.

Prompts come from a JSONL file with ``id`` and ``prompt`` fields, or from a selfimprove task (its prompt
template applied), e.g.::

    python scripts/ray_vllm_generate.py --model /models/Qwen2.5-7B-Instruct --task gsm8k --data gsm8k/ \\
        --split train --n 8 --temperature 0.8 --max-tokens 512 --replicas 4 --output out/gsm8k-train
    python scripts/ray_vllm_generate.py --model /models/Llama-3.1-70B --tensor-parallel-size 4 --replicas 2 \\
        --input prompts.jsonl --output out/prompts        # on a Ray cluster: run on the head node

Needs ``pip install 'ray[data]' 'selfimprove[vllm]'`` and GPUs; ray and vllm are imported only when it runs.
Not covered: writing into the run store (load the JSONL files and put them through a strategy or the cache
yourself), multi-LoRA, autoscaling.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="JSONL file (or folder) of {id, prompt} rows")
    src.add_argument("--task", help="a selfimprove task spec, e.g. gsm8k or arithmetic:terms=4")
    p.add_argument("--data", help="data file or folder for file-backed tasks")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=int, help="first N prompts only")
    p.add_argument("--model", required=True, help="model directory or hub id, readable from every node")
    p.add_argument("--output", required=True, help="output folder (JSONL files, one per block)")
    e = p.add_argument_group("engine")
    e.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs per replica")
    e.add_argument("--replicas", type=int, default=1, help="engine replicas (actors) running at once")
    e.add_argument("--batch-size", type=int, default=64, help="prompts handed to an engine at a time")
    e.add_argument("--dtype", default="auto")
    e.add_argument("--max-model-len", type=int)
    e.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    e.add_argument("--no-prefix-caching", action="store_true")
    s = p.add_argument_group("sampling (vLLM names)")
    s.add_argument("--n", type=int, default=1)
    s.add_argument("--temperature", type=float, default=0.0)
    s.add_argument("--top-p", type=float, default=1.0)
    s.add_argument("--top-k", type=int, default=-1)
    s.add_argument("--max-tokens", type=int, default=256)
    s.add_argument("--stop", action="append", default=[], help="stop string; repeatable")
    s.add_argument("--seed", type=int)
    return p.parse_args(argv)


class Generate:
    """A Ray Data callable class: one vLLM engine per actor, a batch of prompts per call."""

    def __init__(self, model: str, engine: dict[str, Any], params: dict[str, Any]) -> None:
        from selfimprove.backends.vllm_engine import VLLMBackend
        from selfimprove.records import SamplingParams

        self.backend = VLLMBackend(model, **engine)
        self.params = SamplingParams.from_dict(params)

    def __call__(self, batch: dict[str, Any]) -> dict[str, list]:
        prompts = [str(p) for p in batch["prompt"]]
        rows = self.backend.generate(prompts, self.params)
        return {"id": [str(i) for i in batch["id"]], "prompt": prompts,
                "completions": [json.dumps([c.to_dict() for c in row]) for row in rows],
                "fingerprint": [self.backend.fingerprint()] * len(prompts)}


def task_rows(spec: str, data: str | None, split: str, limit: int | None) -> list[dict[str, str]]:
    from selfimprove.tasks import get_task

    task = get_task(spec, data=data)
    examples = task.examples(split)[:limit]
    return [{"id": ex.id, "prompt": task.prompt(ex)} for ex in examples]


def placement(tensor_parallel_size: int) -> dict[str, Any]:
    """Ray resources per actor: one GPU, or a packed placement group of ``tensor_parallel_size`` GPUs that the
    engine's tensor-parallel workers are scheduled into (the pattern of vLLM's own Ray Data example)."""
    if tensor_parallel_size == 1:
        return {"num_gpus": 1}

    def strategy() -> dict[str, Any]:
        import ray
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        pg = ray.util.placement_group([{"GPU": 1, "CPU": 1}] * tensor_parallel_size, strategy="STRICT_PACK")
        strategy = PlacementGroupSchedulingStrategy(pg, placement_group_capture_child_tasks=True)
        return {"scheduling_strategy": strategy}

    return {"num_gpus": 0, "ray_remote_args_fn": strategy}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    import ray

    engine = {"tensor_parallel_size": args.tensor_parallel_size, "dtype": args.dtype,
              "max_model_len": args.max_model_len, "gpu_memory_utilization": args.gpu_memory_utilization,
              "enable_prefix_caching": not args.no_prefix_caching}
    params = {"n": args.n, "temperature": args.temperature, "top_p": args.top_p, "top_k": args.top_k,
              "max_tokens": args.max_tokens, "stop": args.stop, "seed": args.seed, "logprobs": True}
    ray.init(ignore_reinit_error=True)
    if args.input:
        ds = ray.data.read_json(args.input)
        if args.limit:
            ds = ds.limit(args.limit)
    else:
        ds = ray.data.from_items(task_rows(args.task, args.data, args.split, args.limit))
    ds = ds.map_batches(Generate,
                        fn_constructor_kwargs={"model": args.model, "engine": engine, "params": params},
                        batch_size=args.batch_size, concurrency=args.replicas,
                        **placement(args.tensor_parallel_size))
    ds.write_json(args.output)
    print(f"wrote completions for {args.model} to {args.output}")


if __name__ == "__main__":
    main()
