"""Study: train a process reward model (PRM) on rollout labels and measure its step accuracy on held-out
problems.

1. ``--n`` solutions per problem sampled from the model on ``--train-limit`` problems of ``--train-split`` and
   ``--eval-limit`` problems of ``--eval-split`` (held out: the PRM never sees them);
2. every step of every solution labelled by ``--m`` rollouts from its prefix (Math-Shepherd; the labels
READ GOLD
   answers — training data and evaluation labels only), rule ``--rule``;
3. a PRM trained from the model's own backbone on the training labels (``training/prm.py``), saved to
``--out``
   (a loadable model directory: ``best-of-n:verifier=prm:path=OUT``, ``beam:value=prm,prm=OUT``);
4. step accuracy / F1 against the held-out labels, beside the majority-class baseline, printed and written to
   ``OUT/study.json`` with the labelling's token cost.

    python scripts/prm_study.py --model tiny-verify --task arithmetic:verify=2 --train-limit 200 \
        --eval-split test-hard --eval-limit 60 --out PRM_DIR
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tiny-verify")
    p.add_argument("--task", default="arithmetic:verify=2")
    p.add_argument("--train-split", default="train")
    p.add_argument("--train-limit", type=int, default=200)
    p.add_argument("--eval-split", default="test-hard")
    p.add_argument("--eval-limit", type=int, default=60)
    p.add_argument("--n", type=int, default=4, help="solutions sampled per problem")
    p.add_argument("--m", type=int, default=4, help="rollouts per step prefix")
    p.add_argument("--rule", default="some", help="label rule: some, most, soft, inferred")
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--max-steps", type=int, default=200, help="PRM optimiser steps (cap)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--batch-size", type=int, default=16, help="solutions per PRM optimiser step")
    p.add_argument("--train-layers", type=int, default=-1,
                   help="transformer blocks trained below the head, from the top (-1: all; a real model on a "
                        "CPU: 0-2)")
    p.add_argument("--delimiter", default=None,
                   help="step delimiter replacing the task's own (free text: e.g. '. '; \\n escapes work); "
                        "recorded in the PRM, whose verifier then splits steps the same way")
    p.add_argument("--max-tokens", type=int, default=96, help="token budget of a solution and a rollout")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="directory the PRM is saved to")
    p.add_argument("--reuse", action="store_true",
                   help="OUT already holds a PRM trained by this command: label the held-out split, score it")
    args = p.parse_args(argv)
    from selfimprove.cli.main import quiet_third_party

    quiet_third_party()  # no transformers progress bars or warnings, as on the command line

    import torch

    from selfimprove.backends import get_backend
    from selfimprove.records import SamplingParams
    from selfimprove.tasks import get_task
    from selfimprove.tasks.steps import decode_delimiter, step_format
    from selfimprove.tiny.models import resolve_model
    from selfimprove.training.prm import PRMSettings, rollout_labels, train_prm
    from selfimprove.training.prm_score import PRMScorer, prm_metrics

    torch.set_num_threads(1)
    task = get_task(args.task)
    backend = get_backend(args.model)
    delimiter = decode_delimiter(args.delimiter) if args.delimiter else None
    fmt = step_format(task, delimiter)
    out, report = Path(args.out), {"args": vars(args), "fingerprint": backend.fingerprint()}
    labelled = {}
    for part, split, limit in (
        ("train", args.train_split, args.train_limit),
        ("eval", args.eval_split, args.eval_limit),
    ):
        if part == "train" and args.reuse and (out / "prm.json").exists():
            labelled[part] = []  # the PRM is trained already: held-out labels only
            continue
        t0 = time.perf_counter()
        examples = task.examples(split)[:limit]
        params = SamplingParams(
            n=args.n, temperature=args.temperature, max_tokens=args.max_tokens, seed=args.seed
        )
        sols = backend.generate([task.prompt(e) for e in examples], params)
        texts = [[c.text for c in cs if c.ok and c.finish_reason == "stop"] for cs in sols]
        rows, calls = rollout_labels(
            backend,
            task,
            examples,
            texts,
            m=args.m,
            rule=args.rule,
            temperature=args.temperature,
            max_tokens=args.max_tokens,
            seed=args.seed + 1,
            fmt=fmt,
        )
        labelled[part] = rows
        report[part] = {
            "split": split,
            "problems": len(examples),
            "solutions": len(rows),
            "steps": sum(len(r.steps) for r in rows),
            "good_share": sum(y >= 0.5 for r in rows for y in r.labels)
            / max(1, sum(len(r.labels) for r in rows)),
            "sample_tokens": sum(c.completion_tokens for cs in sols for c in cs),
            "rollout_tokens": sum(c.completion_tokens for s in calls for c in s.completions),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        print(part, json.dumps(report[part]), flush=True)
    with open(out.parent / f"{out.name}.labels.jsonl", "w") as f:  # the rows, for a later look
        for part, rows in labelled.items():
            f.writelines(json.dumps({"part": part, **r.to_dict()}) + "\n" for r in rows)
    t0 = time.perf_counter()
    if args.reuse and (out / "prm.json").exists():
        report["training"] = {**json.loads((out / "prm.json").read_text()), "reused": True}
    else:
        report["training"] = train_prm(
            resolve_model(args.model),
            labelled["train"],
            PRMSettings(lr=args.lr, max_steps=args.max_steps, seed=args.seed, batch_size=args.batch_size,
                        train_layers=args.train_layers),
            out,
            meta={"rule": args.rule, "model": args.model, "task": args.task, "delimiter": delimiter},
            chat=backend.capabilities.chat_template,
        )
    report["training"]["wall_s"] = round(time.perf_counter() - t0, 1)
    del backend  # the policy's memory, before the PRM loads
    scorer = PRMScorer(out, batch_size=8)
    for part in ("eval", "train"):  # held-out first
        rows = labelled[part]
        report[f"metrics_{part}"] = prm_metrics(
            scorer.score([r.prompt for r in rows], [r.steps for r in rows]), rows
        )
        print(f"metrics on {part}:", json.dumps(report[f"metrics_{part}"]), flush=True)
        (out / "study.json").write_text(json.dumps(report, indent=1))
    (out / "study.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
