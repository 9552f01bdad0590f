"""The pretraining stream of the built-in model: solve, verify, correct and hint sequences, in token ids.

Each sequence is ``prompt + completion + <eos>`` with a loss mask on the completion and the EOS only. Formats
(see ``tasks/arithmetic.py``): solve → a solution; verify → `` yes``/`` no`` (half the candidates right;
format 2 re-solves and compares digit by digit first); correct → the reviewed answer `` #<sum>`` (format 2: a
solution in question order; 30 % of the candidates right, so that keeping a right answer is learned too); hint
→ a solution reaching the given answer.
Problems are drawn fresh from a seeded generator and never equal a dev, test or test-hard problem of the task.
Solutions add the operands in question order (``config.question_order`` of them) or in a uniformly random
order: the random orders make the model's sampled chains diverse (see ``tasks/arithmetic.py``), the question
order gives greedy decoding one reliable path.

Wrong candidates for verify and correct imitate the model's own mistakes: a wrong digit or a dropped carry in
one running sum, a mis-copied operand, a skipped or a repeated operand, or a final answer that does not match
the last sum; the steps after the mistake stay consistent with it. Real mistakes differ from these, which is
one reason the verify and correct formats are imperfect (deliberately: P(True) and self-correction then have a
real but imperfect signal to measure). Not covered: hard-negative mining from the model's own samples.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from ..tasks.arithmetic import ArithmeticTask, Problem
from .config import TinyConfig

FORMATS = ("solve", "verify", "correct", "hint")


def make_task(config: TinyConfig) -> ArithmeticTask:
    return ArithmeticTask(terms=config.terms, digits=config.digits, seed=config.seed,
                          verify=config.verify_format)


def perturb(task: ArithmeticTask, p: Problem, order: list[int], rng: random.Random) -> str:
    """A wrong solution of ``p`` along ``order`` (operand indices): its final answer differs from the sum."""
    limit = 10 ** task.width
    for _ in range(20):
        kind = rng.choice(("sum", "sum", "carry", "copy", "skip", "repeat", "repeat", "final"))
        copies = [p.operands[j] for j in order]
        t = rng.randrange(len(order))
        if kind == "skip" and len(order) > 1 and copies[t] != 0:
            return task.render(p, order[:t] + order[t + 1:])
        if kind == "repeat" and t > 0:  # the tiny model's most common slip: an operand used twice, one never
            again = order[:t] + [order[rng.randrange(t)]] + order[t + 1:]
            if sum(p.operands[j] for j in again) != p.total:
                return task.render(p, again)
            continue
        if kind == "copy":
            copies[t] = _change_digit(copies[t], rng, len(str(copies[t])))
            return_text = task.render(p, order, copies=copies)
            if sum(copies) != p.total:
                return return_text
            continue
        partials, running = [], 0
        for i, c in enumerate(copies):
            running += c
            if i == t and kind in ("sum", "carry"):
                if kind == "carry":
                    running += rng.choice((-1, 1)) * 10 ** rng.randrange(1, len(str(running)) + 1)
                else:
                    running = _change_digit(running, rng, len(str(running)))
            partials.append(running)
        final = partials[-1]
        if kind == "final":
            final = _change_digit(final, rng, len(str(final)))
        if final != p.total and 0 <= min(partials) and max(partials + [final]) < limit and final >= 0:
            return task.render(p, order, partials=partials, final=final)
    return task.render(p, order, final=(p.total + 1) % limit)  # fallback: always wrong


def _change_digit(v: int, rng: random.Random, n_digits: int) -> int:
    s = list(str(v).zfill(n_digits))
    i = rng.randrange(len(s))
    s[i] = rng.choice([d for d in "0123456789" if d != s[i]])
    return int("".join(s))


class Stream:
    """An endless, seeded stream of training sequences ``(ids, loss_mask)`` in the config's format mixture."""

    def __init__(self, config: TinyConfig, vocab: dict[str, int], eos_id: int,
                 mix: dict[str, float] | None = None, salt: int = 0) -> None:
        self.config, self.vocab, self.eos_id = config, vocab, eos_id
        self.task = make_task(config)
        self.rng = random.Random(config.seed * 7919 + 17 + 1000003 * salt)
        mix = config.mix if mix is None else mix
        held = ["dev", "test", "test-hard"]
        self.held_out = {tuple(e.meta["operands"]) for s in held for e in self.task.examples(s)}
        self.formats = [f for f in FORMATS if mix.get(f, 0) > 0]
        self.weights = [mix[f] for f in self.formats]

    def problem(self) -> Problem:
        c = self.config
        while True:
            if c.beyond_terms and self.rng.random() < c.beyond_frac:
                k = self.rng.randint(c.terms[1] + 1, c.terms[1] + c.beyond_terms)
                p = self.task.sample_problem(self.rng, terms=(k, k))
            else:
                p = self.task.sample_problem(self.rng)
            if p.operands not in self.held_out:
                return p

    def text(self) -> tuple[str, str]:
        """One (prompt, completion) pair in a format drawn from the mixture."""
        task, rng = self.task, self.rng
        fmt = rng.choices(self.formats, self.weights)[0]
        p = self.problem()
        ex = task.make_example(p, "stream")
        k = len(p.operands)
        if rng.random() < self.config.question_order:
            order = list(range(k))
        elif self.config.orders == "rotate":
            start = rng.randrange(k)
            order = list(range(start, k)) + list(range(start))
        else:
            order = rng.sample(range(k), k)
        gold = task.render(p, order)
        if fmt == "solve":
            return task.prompt(ex), gold
        if fmt == "hint":
            return task.hint_prompt(ex), gold
        good = rng.random() < (0.5 if fmt == "verify" else 0.3)
        cand = gold if good else perturb(task, p, order, rng)
        if fmt == "verify":
            return task.verify_prompt(ex, cand), task.verify_target(ex, cand)
        # correct (format 1): the reviewed *answer* only — a rewritten solution would have to repeat the
        # candidate's labels, which contradicts the solve format's "pick an operand not used yet" and, in a
        # trial, undid it; format 2 shows only the candidate's answer and re-solves in question order
        return task.correct_prompt(ex, cand), task.correct_target(ex)

    def encode(self, prompt: str, completion: str) -> tuple[list[int], list[int]]:
        v = self.vocab
        p_ids = [v[ch] for ch in prompt]
        c_ids = [v[ch] for ch in completion] + [self.eos_id]
        return p_ids + c_ids, [0] * len(p_ids) + [1] * len(c_ids)

    def __iter__(self) -> Iterator[tuple[list[int], list[int]]]:
        while True:
            yield self.encode(*self.text())


def batches(stream: Stream, batch_size: int, pad_id: int, pool: int = 32):
    """Batches of similar-length sequences (less padding): draw ``pool`` batches' worth, sort by length,
    split, shuffle the batch order. Yields ``(input_ids, labels)`` LongTensors, right-padded, labels -100
    off-loss."""
    import torch

    it = iter(stream)
    rng = random.Random(stream.config.seed + 1)
    while True:
        seqs = sorted((next(it) for _ in range(batch_size * pool)), key=lambda s: len(s[0]))
        groups = [seqs[i:i + batch_size] for i in range(0, len(seqs), batch_size)]
        rng.shuffle(groups)
        for g in groups:
            width = max(len(ids) for ids, _ in g)
            ids = torch.full((len(g), width), pad_id, dtype=torch.long)
            labels = torch.full((len(g), width), -100, dtype=torch.long)
            for row, (s, m) in enumerate(g):
                ids[row, :len(s)] = torch.tensor(s)
                labels[row, :len(s)] = torch.tensor([t if k else -100 for t, k in zip(s, m)])
            yield ids, labels
