"""The training methods' outputs pinned: every method's two rounds, on a scripted generator whose answers are
a deterministic function of the prompt, the sample index and the round, must produce exactly what main at
17e6422 (the last commit before the training methods became one file each) produced — the same generation
and scoring calls (prompts, sampling parameters, seeds), the same traces, kept rows, pseudo-labels and
preference pairs, the same TRL trainer settings, the same per-round evaluation, guards, extras and summary.

``tests/golden/training_pin.json`` was recorded once on that commit (``python tests/test_training_pin.py
--record``, with ``make_config`` / ``run_case`` written for the configs of that time) and is compared, never
re-derived: a refactoring may *add* keys to a stored record, but every value recorded there must come out the
same. What the pin leaves out, because it varies between machines and not with the method's logic: the trained
weights, training losses and log-probabilities measured on the trained model, and wall times. The scripted
answers ignore the trained weights, so everything else is exact.

One intended change was re-recorded since (2026-11-30): the summary's round-vs-round paired tests
(``paired``, ``paired_by_split``) now count an unparseable answer wrong, as the accuracy beside them does,
instead of leaving the pair out; only those entries were replaced, by a script that refused to write if any
other recorded value differed.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

import pytest

from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.tasks.arithmetic import ArithmeticTask

GOLDEN = Path(__file__).parent / "golden" / "training_pin.json"
SMALL = {"rounds": 2, "k": 4, "train_limit": 6, "eval_limit": 4, "max_tokens": 60, "batch_size": 4,
         "patience": None}
PREF = {"guard_limit": 3, "guard_k": 2, "collapse_stop": False}
CASES = {
    "star": {"method": "star"},
    "rest-em": {"method": "rest-em"},
    "lmsi": {"method": "lmsi", "threshold": 0.4},
    "easy-to-hard": {"method": "easy-to-hard", "difficulty_splits": ("terms=6", "terms=7"), "replay": 0.5},
    "no-filter": {"method": "no-filter"},
    "self-rewarding": {"method": "self-rewarding", **PREF},
    "self-rewarding-meta": {"method": "self-rewarding", "judge": "rubric", "meta_judge": True, **PREF},
    "scpo": {"method": "scpo", "threshold": 0.25, "eval_correction": True, **PREF},
    "spin": {"method": "spin", **PREF},
    "gold-dpo": {"method": "gold-dpo", "loss_type": ("sigmoid",), **PREF},
    "v-star": {"method": "v-star", "bon_n": 3, **PREF},
    "cct": {"method": "cct", **PREF},
}
VOLATILE = {"seconds", "phase_seconds", "eval_seconds", "cpu_seconds", "phase_cpu_seconds",
            "eval_cpu_seconds", "losses", "first_loss", "last_loss",
            "chosen_logp_before",
            "chosen_logp_after", "rejected_logp_before", "rejected_logp_after", "trl_metrics", "model_mtime",
            "tokens"}
"""Keys whose values depend on the machine (wall times) or on the trained weights (losses, log-probabilities),
and ``Completion.tokens`` (added after the record: each sampled token's text for display, from which nothing
is computed)."""
TRL_FIELDS = ("learning_rate", "num_train_epochs", "max_steps", "per_device_train_batch_size",
              "lr_scheduler_type",
              "warmup_steps", "weight_decay", "seed", "data_seed", "max_length", "packing", "beta",
              "loss_type",
              "loss_weights", "gradient_accumulation_steps", "bf16", "completion_only_loss")


def task() -> ArithmeticTask:
    return ArithmeticTask(n_train=12, n_dev=6, n_test=6)


def unit(*parts) -> float:
    """A deterministic number in [0, 1) from ``parts``."""
    return int(hashlib.sha256(repr(parts).encode()).hexdigest()[:8], 16) / 2**32


class Noisy(ScriptedBackend):
    """Answers every prompt the loops send, deterministically from (prompt, sample index, round): a solve
    prompt is right with probability 0.35 + 0.15 x round, else off by 1-3 (so wrong answers collide in votes),
    sometimes without an answer or cut at max_tokens; verify, review, rubric and pairwise prompts get
    answers that lean right; log-likelihoods lean towards ' yes' for right candidates. Not the library's
    ``scripted`` model on purpose: the golden records were made with this one, and a pin's backend never
    changes (its round-dependent accuracy, truncated and answerless samples are what the pin exercises)."""

    def __init__(self, t: ArithmeticTask, round_idx: int) -> None:
        super().__init__(default=" no")
        self.t, self.round_idx = t, round_idx
        self.plain = {t.prompt(e): e for s in ("train", "dev", "test", "test-hard", "terms=6", "terms=7",
                                                "train:terms=6", "train:terms=7") for e in t.examples(s)}
        self.hinted = {t.hint_prompt(e): e for e in self.plain.values()}

    def _reply(self, prompt, i, params):
        t, u = self.t, unit(prompt, i, self.round_idx, params.temperature)
        if prompt in self.plain or prompt in self.hinted:
            e = self.plain.get(prompt) or self.hinted[prompt]
            right = t.solution(e)
            if prompt in self.hinted or u < 0.35 + 0.15 * self.round_idx:
                return right
            if u > 0.95:
                return right + " =" * 40  # runs past max_tokens
            if u > 0.9:
                return right.rsplit("#", 1)[0]  # no answer
            return re.sub(r"#\d+$", "#" + t.encode(int(e.answer) + 1 + int(u * 30) % 3), right)
        if re.search(r"Better response:$", prompt):
            return "A" if u < 0.6 else "B"
        if "Score: <total points>" in prompt:
            return f"Score: {1 + int(u * 5)}"
        head = self._head(prompt)
        if head is None:
            return self.default
        e, candidate = self.plain[head], prompt[len(head):]
        ok = t.extract(candidate[:-2]) == e.answer
        if prompt.endswith(" !"):
            value = int(e.answer) if (u < 0.7) == (ok or u < 0.3) else int(e.answer) + 2
            return f" #{t.encode(value)}"
        if prompt.endswith(" ?"):
            return " yes" if (ok and u < 0.8) or (not ok and u < 0.25) else " no"
        return self.default

    def _head(self, prompt: str):
        return next((q for q in self.plain if prompt.startswith(q) and len(prompt) > len(q)), None)

    def loglikelihood(self, prompts, continuations):
        self.scored.extend(zip(prompts, continuations))
        out = []
        for p, c in zip(prompts, continuations):
            u = unit(p, c, self.round_idx)
            head = self._head(p) if p.endswith(" ?") else None
            if head is not None:
                ok = self.t.extract(p[len(head):-2]) == self.plain[head].answer
                out.append(-0.1 - u if (c == " yes") == ok else -1.0 - 2 * u)
            else:
                out.append(-0.05 * len(c) - u)
        return out


def round_of(path: str) -> int:
    m = re.search(r"round-(\d+)", path)
    return int(m.group(1)) if m else 0


def make_config(fields: dict):
    """The run config of one case (the only place that knows how configs are built)."""
    from selfimprove.training.config import LoopConfig

    return LoopConfig.from_dict({**SMALL, **fields})


def run_case(cfg, t, model_dir: Path, run_dir: Path):
    """Run a case's rounds; the backends made, in order, for their recorded calls."""
    from selfimprove.training.loop import run_loop

    backends: list[tuple[str, Noisy]] = []

    def make(path: str) -> Noisy:
        b = Noisy(t, 10 + round_of(path) if path.endswith("verifier") else round_of(path))
        backends.append((path, b))
        return b

    run_loop(cfg, t, model_dir, run_dir, make_backend=make, log=lambda m: None)
    return backends


def _strip(value):
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


def record(case: str, model_dir: Path, run_dir: Path, monkeypatch) -> dict:
    """Everything the pin compares, for one case."""
    from selfimprove.training import dpo, sft

    trl: list[dict] = []

    def recording(make):
        def wrapped(settings, output_dir, n):
            config = make(settings, output_dir, n)
            trl.append({f: _plain(getattr(config, f)) for f in TRL_FIELDS if hasattr(config, f)} | {"n": n})
            return config
        return wrapped

    monkeypatch.setattr(sft, "sft_config", recording(sft.sft_config))
    monkeypatch.setattr(dpo, "dpo_config", recording(dpo.dpo_config))
    t = task()
    backends = run_case(make_config(CASES[case]), t, model_dir, run_dir)
    monkeypatch.undo()

    def norm(text: str) -> str:
        return text.replace(str(run_dir), "<run>").replace(str(model_dir), "<base>")

    calls = [(norm(p), round_of(p), [(q, _params(params)) for q, params in b.calls], b.scored)
             for p, b in backends]
    out = {"calls": _digest(calls), "n_calls": sum(len(c[2]) for c in calls), "trl": trl, "files": {},
           "records": {}}
    for path in sorted(run_dir.rglob("*.json*")):
        rel = str(path.relative_to(run_dir))
        if rel in ("state.json",) or rel.startswith(".") or "/verifier/" in rel or rel.endswith(
                ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                 "special_tokens_map.json")):
            continue
        if path.suffix == ".jsonl":
            rows = [json.loads(norm(line)) for line in path.read_text().splitlines() if line.strip()]
            if rel.endswith("traces.jsonl") or "/eval-" in rel:
                # a label, not a result
                rows = [{k: v for k, v in r.items() if k != "strategy"} for r in rows]
            out["files"][rel] = {"n": len(rows), "sha": _digest(_strip(rows))}
        else:
            out["records"][rel] = _strip(json.loads(norm(path.read_text())))
    return out


def _params(params) -> list:
    return [_plain(getattr(params, f, None)) for f in ("n", "temperature", "top_p", "top_k", "max_tokens",
                                                       "stop",
                                                       "seed", "logprobs")]


def _plain(value):
    if isinstance(value, tuple):
        return list(value)
    if hasattr(value, "value"):  # enums (lr_scheduler_type)
        return value.value
    return value


def contains(got, want, where: str = "") -> list[str]:
    """Where ``got`` differs from ``want``, ignoring keys ``want`` does not have (additions are allowed)."""
    if isinstance(want, dict) and isinstance(got, dict):
        out = []
        for k, v in want.items():
            out += [f"{where}.{k}: missing"] if k not in got else contains(got[k], v, f"{where}.{k}")
        return out
    if isinstance(want, list) and isinstance(got, list) and len(want) == len(got):
        return [d for i, (g, w) in enumerate(zip(got, want)) for d in contains(g, w, f"{where}[{i}]")]
    if isinstance(want, float) and isinstance(got, (int, float)):
        return [] if got == pytest.approx(want, rel=1e-9, abs=1e-12) else [f"{where}: {got!r} != {want!r}"]
    return [] if got == want else [f"{where}: {got!r} != {want!r}"]


@pytest.mark.parametrize("case", list(CASES))
def test_method_outputs_match_the_pinned_record(case, tiny_random_model_dir, tmp_path, monkeypatch):
    golden = json.loads(GOLDEN.read_text())
    got = record(case, tiny_random_model_dir, tmp_path / "run", monkeypatch)
    want = golden[case]
    # metrics.jsonl is one line per round's metrics.json, which ``records`` compares value by value (a hash of
    # the concatenation would refuse added keys): check the concatenation instead of its hash
    want["files"].pop("metrics.jsonl")
    text = (tmp_path / "run" / "metrics.jsonl").read_text()
    text = text.replace(str(tmp_path / "run"), "<run>").replace(str(tiny_random_model_dir), "<base>")
    lines = [json.loads(x) for x in text.splitlines()]
    assert [_strip(x) for x in lines] == [got["records"][f"round-{r}/metrics.json"]
                                          for r in range(len(lines))]
    problems = contains(got, want)
    assert not problems, (f"{case}: {len(problems)} difference(s) from the pinned record:\n"
                          + "\n".join(problems[:30]))


class Patch:
    """A monkeypatch for recording outside pytest."""

    def __init__(self):
        self.undo_list = []

    def setattr(self, obj, name, value):
        self.undo_list.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def undo(self):
        for obj, name, value in reversed(self.undo_list):
            setattr(obj, name, value)
        self.undo_list.clear()


if __name__ == "__main__" and "--record" in sys.argv:  # run once, on the commit named in the docstring
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import make_random_llama

    with tempfile.TemporaryDirectory() as tmp:
        model = make_random_llama(Path(tmp) / "tiny-random" / "model")
        result = {}
        for name in CASES:
            result[name] = record(name, model, Path(tmp) / name / "run", Patch())
            print(name, result[name]["n_calls"], "calls", file=sys.stderr)
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
