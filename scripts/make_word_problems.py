"""Write one-step arithmetic word problems as JSONL (``id``, ``question``, ``answer``) for ``--task jsonl``.

One operation per problem, drawn evenly from addition, subtraction, multiplication and exact division, with
small numbers, so that a 135M-parameter instruct model is neither at 0 % nor at 100 %: the easy end of GSM8K's
range (Cobbe et al. 2021, "Training Verifiers to Solve Math Word Problems", arXiv 2110.14168). Deterministic
in ``--seed``; splits of different seeds can overlap.

    python scripts/make_word_problems.py --n 200 --seed 0 --out wp.jsonl
    selfimprove eval --model smollm2 --task "jsonl:kind=number,fractions=false,template=..." --data wp.jsonl
"""

from __future__ import annotations

import argparse
import json
import random

NAMES = ("Ana", "Ben", "Chen", "Dana", "Eli", "Fatima", "Gus", "Hana", "Ivan", "Jo", "Kofi", "Lena", "Mia",
         "Noor")
THINGS = ("apples", "marbles", "stickers", "pencils", "cookies", "books", "stamps", "shells", "cards", "eggs")


def problem(rng: random.Random) -> tuple[str, int]:
    """One (question, answer) pair."""
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    op = rng.choice(("add", "sub", "mul", "div"))
    if op == "add":
        a, b = rng.randint(3, 60), rng.randint(2, 40)
        return (
            f"{name} has {a} {thing}. {name} gets {b} more {thing}. How many {thing} does {name} have now?",
            a + b)
    if op == "sub":
        b, left = rng.randint(2, 40), rng.randint(1, 40)
        question = (f"{name} had {b + left} {thing} and gave {b} of them away. How many {thing} does {name} "
                    "have left?")
        return question, left
    a, b = rng.randint(2, 9), rng.randint(2, 12)
    if op == "mul":
        return f"There are {a} bags with {b} {thing} in each bag. How many {thing} are there in all?", a * b
    return (
        f"{name} shares {a * b} {thing} equally among {a} friends. How many {thing} does each friend get?", b)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="problems to write")
    ap.add_argument("--seed", type=int, default=0, help="random seed")
    ap.add_argument("--out", required=True, help="JSONL file to write")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    with open(args.out, "w", encoding="utf-8") as f:
        for i in range(args.n):
            question, answer = problem(rng)
            f.write(json.dumps({"id": f"wp-{args.seed}-{i}", "question": question, "answer": answer}) + "\n")


if __name__ == "__main__":
    main()
