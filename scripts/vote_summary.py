"""Greedy accuracy, maj@k, pass@k and the precision of majority-vote labels of a built-in model, per split.

    python scripts/vote_summary.py [--model tiny] [--splits dev test-hard] [--n 16] [--temperature 0.7]
        [--limit 200] [--min-share 0.5] [--seed 0]

The numbers of docs/results/builtin-model.md: for each split, ``selfimprove.tiny.evaluate.vote_summary`` over
``--limit`` examples (one greedy completion and ``--n`` samples at ``--temperature`` each, decoded by
``tiny.evaluate.generate``, i.e. ``model.generate`` without the backends or the completion cache), then the
majority labels whose vote share is at least ``--min-share`` (the LMSI / easy-to-hard acceptance rule): the
share of problems that reach it (coverage) and how often those labels equal the gold answer (precision). A
completion that never wrote an answer (unparseable, or cut at the token limit mid-solution) is a vote for
nothing and counts as wrong. The model is the cached built-in model (pretrained on first use, as everywhere).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter


def majority_labels(task, examples, samples, min_share: float) -> dict[str, float]:
    """Coverage and precision of the majority answer among the samples when its share is ≥ ``min_share``."""
    kept = right = 0
    for ex, ss in zip(examples, samples, strict=True):
        votes = Counter(a for a in (task.extract(s) for s in ss) if a is not None)
        if not votes:
            continue
        top, count = votes.most_common(1)[0]
        if count / len(ss) >= min_share:
            kept += 1
            right += bool(task.check(ex, top))
    return {"label_coverage": kept / len(examples), "label_precision": right / kept if kept else None,
            "labels_kept": kept}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny", help="built-in model name (or a model directory)")
    ap.add_argument("--splits", nargs="+", default=["dev", "test-hard"])
    ap.add_argument("--n", type=int, default=16, help="samples per problem")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--limit", type=int, default=200, help="problems per split")
    ap.add_argument("--min-share", type=float, default=0.5, help="vote share a majority label needs")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfimprove.cli.main import quiet_third_party
    from selfimprove.tasks.arithmetic import ArithmeticTask
    from selfimprove.tiny import resolve_model
    from selfimprove.tiny.evaluate import generate, max_new_tokens, vote_summary
    from selfimprove.tiny.pretrain import read_metadata

    quiet_third_party()
    path = resolve_model(args.model)
    meta = read_metadata(path) or {}
    cfg = meta.get("config", {})
    task = ArithmeticTask(terms=tuple(cfg.get("terms", (2, 4))), digits=tuple(cfg.get("digits", (1, 2))),
                          seed=cfg.get("seed", 0), verify=cfg.get("verify_format", 1))
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    print(f"model {path} (fingerprint {meta.get('fingerprint')}, dev greedy at pretraining "
          f"{meta.get('dev_greedy_accuracy')}); n={args.n} T={args.temperature} seed={args.seed}")
    for split in args.splits:
        examples = task.examples(split)[:args.limit]
        prompts = [task.prompt(e) for e in examples]
        max_new = max_new_tokens(task, examples)
        greedy = [t[0] for t in generate(model, tok, prompts, max_new=max_new, seed=args.seed)]
        samples = generate(model, tok, prompts, n=args.n, temperature=args.temperature, max_new=max_new,
                           seed=args.seed)
        out = vote_summary(task, examples, greedy, samples)
        out.update(majority_labels(task, examples, samples, args.min_share))
        print(json.dumps({"split": split, **{k: round(v, 4) if isinstance(v, float) else v
                                             for k, v in out.items()}}))


if __name__ == "__main__":
    main()
