"""GRPO (gold, majority, self-judge rewards) against STaR, LMSI and the no-filter control, matched sampling.

    OMP_NUM_THREADS=1 python scripts/rl_study.py --out DIR --seeds 0 [1 2] [--arms ...]

Every arm is one ``selfimprove train`` run (resumable: a finished arm is skipped, an interrupted one resumed)
on the built-in ``tiny`` model and the task it was pretrained on, from the same start, with the same rounds,
train slices and evaluation (greedy, the same ``test`` and ``test-hard`` problems every round). The sampling
budget is matched in samples: STaR and LMSI (majority-vote pseudo-labels, no gold) draw ``n`` samples of each
of ``train_limit`` problems a round; GRPO draws
``num_generations = n`` completions of ``train_limit`` prompts a round (``max_steps = train_limit * n /
batch_size``); the sampled completion tokens of every arm are counted and printed beside the results. The
no-filter control samples one greedy answer per problem (fewer tokens; it is the "more training on its own
outputs" control). ``grpo-majority-e2h`` is the easy-to-hard setting: majority rewards on a training pool one
operand beyond the pretraining range (``train:terms=5``), evaluated on the held-out ``terms=5`` problems.
``lmsi-e2h`` is its SFT counterpart: LMSI's majority-vote pseudo-labels on the same pool. The ``-min50`` arms
skip a prompt whose majority holds under half the votes, as LMSI's default threshold does. ``star-e2h`` (gold)
and ``no-filter-e2h`` are the references on that pool.

Prints Markdown: per arm and seed the test accuracy by round, the sampled tokens, the RL guards per round
(reward accuracy against gold, confidently wrong majority share, entropy, KL to the start), and paired tests
(exact McNemar, paired bootstrap 95 % CI) of each arm's last round against round 0, STaR and the control.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

TASK = "arithmetic:terms=2-4,digits=1-2"
ARMS = {
    "no-filter": ["--method", "no-filter"],
    "star": ["--method", "star"],
    "lmsi": ["--method", "lmsi"],
    "grpo-gold": ["--method", "grpo", "--reward", "gold"],
    "grpo-majority": ["--method", "grpo", "--reward", "majority"],
    "grpo-self-judge": ["--method", "grpo", "--reward", "self-judge"],
    "grpo-majority-e2h": ["--method", "grpo", "--reward", "majority", "--train-split", "train:terms=5",
                          "--eval-splits", "test", "test-hard", "terms=5"],
    "lmsi-e2h": ["--method", "lmsi", "--train-split", "train:terms=5",
                 "--eval-splits", "test", "test-hard", "terms=5"],
    "star-e2h": ["--method", "star", "--train-split", "train:terms=5",
                 "--eval-splits", "test", "test-hard", "terms=5"],
    "no-filter-e2h": ["--method", "no-filter", "--train-split", "train:terms=5",
                      "--eval-splits", "test", "test-hard", "terms=5"],
    "grpo-majority-min50": ["--method", "grpo", "--reward", "majority", "--min-share", "0.5"],
    "grpo-majority-e2h-min50": ["--method", "grpo", "--reward", "majority", "--min-share", "0.5",
                                "--train-split", "train:terms=5", "--eval-splits", "test", "test-hard",
                                "terms=5"],
}


def run_arm(arm: str, seed: int, out: Path, a) -> Path:
    from selfimprove.cli.main import main

    run = out / f"seed{seed}" / arm
    if (run / "summary.json").exists():
        return run
    n, steps = a.n, a.train_limit * a.n // a.batch_size
    common = ["--model", a.model, "--task", TASK, "--rounds", str(a.rounds), "--n", str(n),
              "--train-limit", str(a.train_limit), "--eval-limit", str(a.eval_limit), "--seed", str(seed),
              "--patience", "0", "--max-steps", str(a.sft_steps), "--batch-size", "16",
              "--rl-num-generations", str(n), "--rl-batch-size", str(a.batch_size),
              "--rl-max-steps", str(steps), "--rl-max-completion-length", "128",
              "--store", str(out / "runs.db")]
    spec = ARMS[arm]
    if "--eval-splits" not in spec:
        common += ["--eval-splits", "test", "test-hard"]
    argv = ["train", "--resume", str(run)] if (run / "config.json").exists() else \
        ["train", *common, *spec, "--out", str(run)]
    if main(argv) != 0:
        raise SystemExit(f"{arm} seed {seed} failed: {' '.join(argv)}")
    return run


def sampled_tokens(run: Path, r: int) -> int | None:
    """Completion tokens a round sampled: GRPO's count (train.json), else the generate phase's traces."""
    train = json.loads((run / f"round-{r}" / "train.json").read_text())
    if train.get("sampled_tokens") is not None:
        return train["sampled_tokens"]
    total = 0
    for line in (run / f"round-{r}" / "traces.jsonl").read_text().splitlines():
        for step in json.loads(line)["steps"]:
            total += sum(c.get("completion_tokens", 0) for c in step.get("completions", []))
    return total


def report(out: Path, arms: list[str], seeds: list[int], split: str,
           refs: tuple[str, ...] = ("star", "no-filter")) -> None:
    """One table per split; each arm's last round against round 0 and against every arm in ``refs`` (an
    ``-e2h`` arm against the ``-e2h`` version of the reference, trained on the same pool)."""
    from selfimprove.metrics.stats import correct_by_id, mcnemar_exact, paired_bootstrap
    from selfimprove.training.loop import eval_traces
    from selfimprove.training.state import round_metrics

    def test(a, b):
        mc, bs = mcnemar_exact(a, b), paired_bootstrap(a, b)
        ci = f"{100 * bs['ci_low']:+.1f}…{100 * bs['ci_high']:+.1f}"
        return f"{100 * mc['diff']:+.1f} ({ci}; p={mc['p_value']:.2g})"

    print(f"\n### {split}: accuracy by round, last round against start and the references\n")
    print("| arm | seed | accuracy % by round | sampled tokens / round | last − start | "
          + " | ".join(f"last − {r}" for r in refs) + " |")
    print("|---|---|---|---|---|" + "---|" * len(refs))
    for seed in seeds:
        base = out / f"seed{seed}"
        for arm in arms:
            run = base / arm
            if not (run / "summary.json").exists():
                continue
            ms = round_metrics(run)
            if split not in ms[0]["eval"]:
                continue
            accs = " → ".join(f"{100 * m['eval'][split]['accuracy']:.1f}" for m in ms)
            last = len(ms) - 1
            tokens = " / ".join(str(sampled_tokens(run, r)) for r in range(1, last + 1))
            now = correct_by_id(eval_traces(run, last, split))
            cells = [test(correct_by_id(eval_traces(run, 0, split)), now)]
            for ref in refs:
                ref = f"{ref}-e2h" if "-e2h" in arm and not ref.endswith("-e2h") else ref
                rr = base / ref
                ok = (rr / "summary.json").exists() and ref != arm and \
                    (rr / f"round-{len(round_metrics(rr)) - 1}" / f"eval-{split}.jsonl").exists()
                cells.append(test(correct_by_id(eval_traces(rr, len(round_metrics(rr)) - 1, split)), now)
                             if ok else "")
            print(f"| {arm} | {seed} | {accs} | {tokens} | {' | '.join(cells)} |")


def probe_length(length: dict) -> str:
    """Mean completion length on the fixed dev probe, start and now (``methods.grpo.length_probe``); runs
    from before the probe logged only the training batches' lengths, whose problems change every round."""
    if "probe" not in length:
        return "— (no probe)"
    return f"{length['baseline']:.2f} → {length['mean']:.2f} ({length['drift']:+.2f})"


def guards_table(out: Path, arms: list[str], seeds: list[int]) -> None:
    from selfimprove.training.state import round_metrics

    def f(x, pct=False):
        return "—" if x is None else (f"{100 * x:.1f}" if pct else f"{x:.3f}")

    print("\n### RL guards per round (from gold: reported, never used)\n")
    print("| arm | seed | round | reward accuracy % | pair accuracy % | majority wrong % | "
          "confidently wrong % | distinct answers / group | entropy (last step) | KL to start (last step) | "
          "probe length: start → now (drift), tokens | unparsed % |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for seed in seeds:
        for arm in arms:
            run = out / f"seed{seed}" / arm
            if not arm.startswith("grpo") or not (run / "summary.json").exists():
                continue
            for m in round_metrics(run)[1:]:
                g = m.get("guards") or {}
                print(f"| {arm} | {seed} | {m['round']} | {f(g.get('reward_accuracy'), True)} | "
                      f"{f(g.get('pair_accuracy'), True)} | {f(g.get('majority_wrong_share'), True)} | "
                      f"{f(g.get('confident_wrong_share'), True)} | {f(g.get('distinct_per_group'))} | "
                      f"{f((g.get('entropy') or {}).get('last'))} | {f((g.get('kl') or {}).get('last'))} | "
                      f"{probe_length(g.get('length') or {})} | {f(g.get('unparsed_share'), True)} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n", type=int, default=8, help="samples per problem (STaR) = GRPO group size")
    ap.add_argument("--train-limit", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=16, help="GRPO completions per step")
    ap.add_argument("--sft-steps", type=int, default=40)
    ap.add_argument("--eval-limit", type=int, default=300)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--vs", nargs="+", default=["star", "no-filter"], choices=list(ARMS),
                    help="reference arms of the paired columns")
    a = ap.parse_args()
    if not a.report_only:
        for seed in a.seeds:
            for arm in a.arms:
                run_arm(arm, seed, a.out, a)
    for split in ("test", "test-hard", "terms=5"):
        report(a.out, a.arms, a.seeds, split, tuple(a.vs))
    guards_table(a.out, a.arms, a.seeds)


if __name__ == "__main__":
    main()
