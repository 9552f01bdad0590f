"""GRPO with a pluggable reward: gold, majority vote (TTRL), RESTRAIN-style, self-judge, weighted sums.

Group Relative Policy Optimization ("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open
Language Models", Shao et al. 2024, arXiv:2402.03300) through TRL's ``GRPOTrainer`` (``training/grpo.py``);
with ``--reward majority`` the label of each prompt is the majority answer of its own group, as in "TTRL:
Test-Time Reinforcement Learning" (Zuo et al. 2025, arXiv:2504.16084); ``restrain`` penalises low-agreement
prompts ("RESTRAIN: From Spurious Votes to Signals -- Self-Driven RL with Self-Penalization", Yu et al. 2025,
arXiv:2510.02172); ``self-judge`` rewards P(True) of the policy's own verify format (``training/rewards``).
Each round trains round r-1's model on the round's training prompts; TRL samples while it trains, so the
generate phase only records the prompts — or, with ``vote_pool`` > 0, draws that many samples per prompt with
round r-1's model and votes: the pool's majority (and its vote share, for ``min_share``) is then the majority
reward's label instead of the group's own (TTRL votes over a larger set than it trains on).

Whether the method reads gold depends on the reward: ``reads_gold`` is True exactly when some part of the
reward is ``gold`` (``data.json`` and ``train.json`` say so too). Every round writes its guards to
``round-<r>/guards.json`` (and so to its metrics): the reward's gold-reading guards (reward accuracy, pair
accuracy, the share of groups whose majority is wrong, distinct answers per group — reported, never used),
TRL's own log of policy entropy, KL to the reference (the run's start by default; None when ``rl.beta`` is 0)
and of the training batches' completion lengths, the length drift on a fixed probe (the first ``guards.limit``
dev problems, ``guards.n`` samples, one seed, every round; ``length_probe``) against the start model's, and
the share of groups without a reward spread. The run stops,
with the reason recorded in ``summary.json``, when the policy entropy falls under ``rl.stop_entropy`` or dev
accuracy fell two rounds in a row (``guards.collapse_stop``).

Not covered: LoRA, the sampled-token budget as a setting (``rl.max_steps`` sets it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ...records import Example, SamplingParams, Trace
from ...strategies.base import make_trace
from ..method import Built, Method


@dataclass(frozen=True)
class GRPO(Method):
    """GRPO (TRL) on the round's prompts, pluggable reward (gold, majority, restrain, self-judge, sums)."""

    name = "grpo"
    paper = ("DeepSeekMath: Pushing the Limits of Mathematical Reasoning in Open Language Models, "
             "arXiv:2402.03300")
    objective = "grpo"

    reward: str = "gold"
    """The reward: gold, majority, restrain, self-judge or format, joined by '+' with optional weights
    (``majority+0.1*format``); only gold reads gold answers."""
    min_share: float | None = None
    """majority: skip a prompt whose winner has under this share of the votes (default 0: never);
    restrain: penalise it (default 0.5)."""
    penalty: float = 0.5
    """restrain: the advantage -penalty given to every sample of a low-agreement prompt."""
    vote_pool: int = 0
    """majority: label each prompt by the majority of this many samples drawn before training (the run's
    temperature, round r-1's model; 0: the group's own samples vote)."""

    def validate(self, cfg) -> None:
        self.make_reward()  # raises, naming the known rewards
        if self.vote_pool < 0 or (self.vote_pool and "majority" not in self.reward):
            raise ValueError(f"{self.name}: vote_pool must be >= 0 and needs a majority reward, got "
                             f"{self.vote_pool} with reward {self.reward!r}")

    @property
    def reads_gold(self) -> bool:  # type: ignore[override]
        return self.make_reward().reads_gold

    def make_reward(self):
        from ..rewards import parse_reward

        return parse_reward(self.reward, self.min_share, self.penalty)

    def collect(self, loop, r: int, backend, examples: list[Example]) -> list[Trace]:
        if self.vote_pool:  # the separate voting pool: its majority labels the prompt
            from ...strategies.base import score_traces
            from ..method import sample, voted_traces

            steps = sample(backend, loop.task, examples, loop.cfg, r, n=self.vote_pool)
            return score_traces(loop.task, examples, voted_traces(self.name, loop.task, examples, steps))
        # GRPO samples inside TRL while it trains; the round records which prompts it trains on
        return [make_trace(e, self.name, [], initial_answer=None, final_answer=None) for e in examples]

    def build(self, loop, r: int, traces: list[Trace], examples: list[Example]) -> Built:
        reward = self.make_reward()
        stats = {"prompts": len(examples), "reward": reward.name, "reads_gold": reward.reads_gold}
        if self.vote_pool:  # the pool's labels: how often right (from gold, reported, never used)
            from ..data import PseudoLabel, label_precision

            by_id = {e.id: e for e in examples}
            labels = []
            for t in traces:
                vote = next(s for s in t.steps if s.kind == "vote").info
                share = vote["votes"] / vote["n"] if vote["n"] else 0.0
                accepted = vote["winner"] is not None and share >= (self.min_share or 0.0)
                labels.append(PseudoLabel(t.example_id, vote["winner"], vote["votes"], vote["parsed"],
                                          vote["n"], accepted))
            stats["pool_labels"] = label_precision(labels, lambda i, a: loop.task.check(by_id[i], a))
            return Built(labels=labels, stats=stats)
        return Built(stats=stats)

    def train(self, loop, r: int, model, tok, examples: list[Example], seed: int, save_to):
        """One GRPO call on ``examples``; returns (model, the train.json fields with the reward's stats)."""
        rows = [{"prompt": loop.task.prompt(e), "id": e.id} for e in examples]
        reward = self.make_reward()
        if self.vote_pool:
            labels = {}
            for d in loop.rd.read_jsonl(f"round-{r}/traces.jsonl"):
                vote = next(s for s in d["steps"] if s["kind"] == "vote")["info"]
                labels[d["example_id"]] = (vote["winner"], vote["votes"] / vote["n"] if vote["n"] else 0.0)
            parts = [p for _, p in reward.parts] if hasattr(reward, "parts") else [reward]
            for part in parts:
                if hasattr(part, "use_pool"):
                    part.use_pool(labels)
        return run_grpo(loop, r, model, tok, rows, examples, reward, seed, save_to)

    def stop_reason(self, loop, r: int) -> str | None:
        return collapse_reason(loop, r)


def run_grpo(loop, r: int, model, tok, rows: list[dict[str, Any]], examples: list[Example], reward, seed: int,
             save_to, *, settings=None):
    """TRL's GRPO on ``rows`` with ``reward`` (bound to the policy being trained, for the self-judge), the KL
    reference ``rl.reference`` names; writes ``round-<r>/guards.json`` and returns (model, train.json
    fields)."""
    from ...backends.hf import HFBackend
    from ..grpo import train_grpo
    from ..rewards import advantage_offsets, as_trl

    cfg = settings or loop.cfg.rl
    reward.bind(HFBackend.from_model(model, tok, name=f"policy of round {r}", chat=loop.chat))
    fn = as_trl(reward, loop.task, examples, max_tokens=cfg.max_completion_length)
    reference = loop.path(0) if cfg.reference == "start" else loop.path(r - 1)
    model, res = train_grpo(model, tok, rows, [fn], dataclasses.replace(cfg, seed=seed), save_to=save_to,
                            reference=reference, advantage_hook=advantage_offsets(reward), chat=loop.chat)
    stats = reward.stats()
    out = {**res.to_dict(), "rewards_per_step": list(res.rewards), "rewards": stats,
           "reads_gold": reward.reads_gold, "sampled_tokens": sampled_tokens(res, cfg)}
    loop.rd.write_json(f"round-{r}/guards.json", rl_guards(loop, r, res, stats, cfg, (model, tok)))
    return model, out


def sampled_tokens(res, cfg) -> int | None:
    """Completion tokens TRL sampled in the call (mean length per step x completions per step)."""
    lengths = res.logs.get("mean_length")
    return round(sum(lengths) * cfg.batch_size) if lengths else None


def rl_guards(loop, r: int, res, stats: dict[str, Any], cfg, policy) -> dict[str, Any]:
    """The round's guards: the reward's gold-reading ones, TRL's log (entropy, KL, the training batches'
    completion lengths) and the length drift of ``policy`` (the trained (model, tokenizer)) on a fixed probe
    (``length_probe``)."""
    logs = res.logs

    def summary(xs):
        return {"first": xs[0], "last": xs[-1], "mean": sum(xs) / len(xs), "steps": len(xs)} if xs else None

    keys = ("reward_accuracy", "pair_accuracy", "majority_wrong_share", "confident_wrong_share",
            "distinct_per_group", "gold_accuracy", "unparsed_share", "mean_reward")
    kl = summary(logs.get("kl", []))
    return {"reward": stats["reward"], "reads_gold": stats["reads_gold"], **{k: stats.get(k) for k in keys},
            "entropy": summary(logs.get("entropy", [])),
            "kl": kl, "kl_reference": cfg.reference if kl else None,
            "kl_note": None if kl else "rl.beta is 0: TRL loads no reference model and logs no KL",
            "length": length_probe(loop, r, policy, cfg),
            "batch_length": summary(logs.get("mean_length", [])),  # the batches' problems: not comparable
            "zero_std_share": summary(logs.get("zero_std_share", [])),
            "clipped_ratio": summary(logs.get("clipped_ratio", []))}


def length_probe(loop, r: int, policy, cfg) -> dict[str, Any]:
    """Mean completion length of round r's policy on a fixed probe — the first ``guards.limit`` dev problems,
    ``guards.n`` samples each at the RL temperature and length, one seed — against round 0's model on the
    same probe (measured at round 1 and kept in its guards.json). The same problems every round, so the
    drift is the policy's, not the mix of problems in a round's training batches."""
    from ...backends.hf import HFBackend
    from ..guards import length_drift

    guards = loop.cfg.guards
    examples = loop.examples(loop.cfg.dev_split, guards.limit) if guards.limit else []
    if not examples:
        return {"probed": 0, "note": "guards.limit is 0: no length probe"}
    probe = {"split": loop.cfg.dev_split, "problems": len(examples), "n": guards.n,
             "temperature": cfg.temperature, "max_tokens": cfg.max_completion_length}
    params = SamplingParams(n=guards.n, temperature=cfg.temperature, max_tokens=cfg.max_completion_length,
                            seed=loop.cfg.seed * 1000 + 801)  # the same draw every round
    prompts = [loop.task.prompt(e) for e in examples]

    def lengths(backend) -> tuple[list[int], int]:  # the completions' lengths, and the failed requests
        done = [c for row in backend.generate(prompts, params) for c in row]
        return [c.completion_tokens for c in done if c.ok], sum(not c.ok for c in done)

    first = loop.rd.read_json("round-1/guards.json").get("length", {}) if (
        r > 1 and loop.rd.exists("round-1/guards.json")) else {}
    baseline, base_failed = (first.get("baseline"), first.get("baseline_failed", 0)) if (
        first.get("probe") == probe) else (None, 0)
    if baseline is None:  # round 0's model from disk (the one in memory may be the policy trained in place)
        start, base_failed = lengths(loop.make_backend(str(loop.path(0))))
        baseline = sum(start) / len(start) if start else None
    now, failed = lengths(HFBackend.from_model(*policy, name=f"policy of round {r}", chat=loop.chat))
    counts = {"probe": probe, "failed": failed, "baseline_failed": base_failed}
    if baseline is None:  # no drift without a baseline: never the policy's own mean standing in for it
        mean = sum(now) / len(now) if now else None
        return {"mean": mean, "baseline": None, "drift": None, "relative": None, "n": len(now), **counts,
                "note": "round 0's model returned no completion on the probe: no baseline"}
    return {**length_drift(now, baseline), **counts}


def collapse_reason(loop, r: int) -> str | None:
    """Why an RL run stops before round r: policy entropy under ``rl.stop_entropy`` in round r-1, or (with
    ``guards.collapse_stop``) dev accuracy that fell two rounds in a row."""
    from ..guards import collapsed
    from ..state import round_metrics

    cfg = loop.cfg
    if r > 1 and cfg.rl.stop_entropy > 0 and loop.rd.exists(f"round-{r - 1}/guards.json"):
        entropy = (loop.rd.read_json(f"round-{r - 1}/guards.json").get("entropy") or {}).get("last")
        if entropy is not None and entropy < cfg.rl.stop_entropy:
            return (f"collapse: round {r - 1}'s policy entropy {entropy:.4f} fell under rl.stop_entropy "
                    f"{cfg.rl.stop_entropy}")
    accs = [m["eval"][cfg.dev_split]["accuracy"] for m in round_metrics(loop.rd.path)[:r]]
    if cfg.guards.collapse_stop and collapsed(accs):
        shown = ", ".join(f"{a or 0:.3f}" for a in accs[-3:])
        return f"collapse: dev accuracy fell two rounds in a row ({shown})"
    return None
