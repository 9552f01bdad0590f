"""The RL length-drift guard measures every round's policy on one fixed probe (the first ``guards.limit`` dev
problems, one seed), against round 0's model on the same probe, not on the problems of a round's training
batches (TRL's logged lengths, which moved with the batch's mix of problems)."""

from __future__ import annotations

from types import SimpleNamespace

from selfimprove.backends.hf import HFBackend
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.training.config import LoopConfig
from selfimprove.training.methods.grpo import length_probe
from selfimprove.training.rundir import RunDir


def _loop(tmp_path, base, opened: list[str]):
    cfg = LoopConfig.from_dict({"method": "grpo", "guards": {"limit": 3, "n": 2},
                                "rl": {"max_completion_length": 8, "num_generations": 2, "batch_size": 2}})
    task = ArithmeticTask(terms=(2, 3), digits=(1, 2), n_train=8, n_dev=5, n_test=3)

    def make_backend(path: str):
        opened.append(path)
        return HFBackend(path)

    return SimpleNamespace(cfg=cfg, task=task, rd=RunDir(tmp_path / "run"), chat=True,
                           examples=lambda split, limit: task.examples(split)[:limit],
                           make_backend=make_backend, path=lambda r: base)


def test_the_length_guard_probes_the_same_dev_problems_every_round(tiny_random_model_dir, tmp_path,
                                                                   monkeypatch):
    opened, prompts = [], []
    real = HFBackend.generate
    monkeypatch.setattr(HFBackend, "generate", lambda self, ps, params: prompts.append(list(ps)) or real(
        self, ps, params))
    loop = _loop(tmp_path, tiny_random_model_dir, opened)
    start = HFBackend(str(tiny_random_model_dir))
    policy = (start.model, start.tokenizer)  # an untrained policy: the same weights as round 0's
    g1 = length_probe(loop, 1, policy, loop.cfg.rl)
    dev = [loop.task.prompt(e) for e in loop.task.examples("dev")[:3]]
    assert opened == [str(tiny_random_model_dir)] and prompts == [dev, dev]  # round 0's model from disk
    assert g1["n"] == 6 and g1["probe"]["problems"] == 3 and g1["baseline"] is not None
    assert g1["drift"] == 0.0 and g1["mean"] == g1["baseline"]  # same weights, same draw: no drift
    loop.rd.write_json("round-1/guards.json", {"length": g1})

    import torch

    with torch.no_grad():  # a different policy in round 2: its lengths move, the probe does not
        for p in start.model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    g2 = length_probe(loop, 2, policy, loop.cfg.rl)
    assert opened == [str(tiny_random_model_dir)] and prompts == [dev] * 3  # round 1's baseline reused
    assert g2["baseline"] == g1["baseline"] and g2["probe"] == g1["probe"] and g2["n"] == 6
    assert g2["drift"] == g2["mean"] - g1["baseline"] and g2["drift"] != 0  # the new policy's lengths moved
    assert g1["failed"] == g2["failed"] == g2["baseline_failed"] == 0


def test_a_start_that_returned_nothing_gives_no_baseline_and_no_drift(tiny_random_model_dir, tmp_path):
    """Failure is data: when round 0's model answers no probe request, there is no baseline, and the policy's
    own mean must not stand in for it (that would report a drift of 0)."""
    from selfimprove.records import Completion

    class Down:
        def generate(self, prompts, params):
            return [[Completion(text="", finish_reason="error", error="server down")] * params.n
                    for _ in prompts]

    loop = _loop(tmp_path, tiny_random_model_dir, [])
    loop.make_backend = lambda path: Down()
    start = HFBackend(str(tiny_random_model_dir))
    g = length_probe(loop, 1, (start.model, start.tokenizer), loop.cfg.rl)
    assert g["baseline"] is None and g["drift"] is None and g["relative"] is None
    assert g["baseline_failed"] == 6 and g["failed"] == 0 and g["n"] == 6 and g["mean"] is not None
    assert "no baseline" in g["note"]


def test_no_probe_when_the_guards_limit_is_zero(tiny_random_model_dir, tmp_path):
    loop = _loop(tmp_path, tiny_random_model_dir, [])
    loop.cfg = LoopConfig.from_dict({"method": "grpo", "guards": {"limit": 0}})
    start = HFBackend(str(tiny_random_model_dir))
    assert length_probe(loop, 1, (start.model, start.tokenizer), loop.cfg.rl)["probed"] == 0
