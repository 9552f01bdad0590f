"""Two CPU processes under ``accelerate launch``: weighted DPO steps (TRL DPOTrainer under DDP, gloo) on the
tiny random model. Each rank trains on its shard of the batch; DDP keeps the replicas equal; only rank 0
saves.

``accelerate launch --cpu --num_processes 2`` starts *one* process unless MPI is configured, so the test uses
accelerate's torch.distributed launcher (``--multi_gpu``) with ``ACCELERATE_USE_CPU=true``, which makes the
Trainer's state MULTI_CPU (checked below, so a silent single-process run cannot pass)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, sys
import torch.distributed as dist
from selfimprove.training.dpo import DPOSettings, train_dpo
from selfimprove.training.sft import load_policy

model_dir, out = sys.argv[1], sys.argv[2]
model, tok = load_policy(model_dir)
pairs = [{"prompt": f"{a}+{b}=", "chosen": f" #{a + b}", "rejected": f" #{a + b + 1}", "weight": 0.5 + a % 2}
         for a in range(4) for b in range(2)]
trained, res = train_dpo(model, tok, pairs, DPOSettings(lr=1e-2, batch_size=2, max_steps=2),
                         save_to=out + "/model")
norm = float(sum(p.detach().double().norm() ** 2 for p in trained.parameters()) ** 0.5)
rank, world = dist.get_rank(), dist.get_world_size()
from accelerate import PartialState
with open(f"{out}/rank{rank}.json", "w") as f:
    json.dump({"world": world, "steps": res.steps, "losses": list(res.losses), "norm": norm,
               "type": str(PartialState().distributed_type)}, f)
"""


@pytest.mark.slow
def test_two_process_cpu_dpo_step(tiny_random_model_dir, tmp_path):
    pytest.importorskip("accelerate")
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_gloo_available():
        pytest.skip("torch.distributed with the gloo backend is not available: no CPU multi-process training")
    launcher = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or shutil.which("accelerate")
    if launcher is None:
        pytest.skip("the `accelerate` command is not installed beside this Python")
    script = tmp_path / "dpo_step.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    cmd = [launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", "29517", str(script), str(tiny_random_model_dir),
           str(tmp_path)]
    proc = subprocess.run(cmd, check=False, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 and r["steps"] == 2 and r["type"].endswith("MULTI_CPU") for r in ranks)
    assert ranks[0]["norm"] == pytest.approx(ranks[1]["norm"], rel=1e-6)  # DDP kept the replicas identical
    assert (tmp_path / "model" / "config.json").exists()
