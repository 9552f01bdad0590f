"""``selfimprove train --resume``: find the run, refuse flags that contradict its stored config, add rounds.

A resumed run is read from its ``config.json``: every setting comes from there, and a flag that says otherwise
is refused, naming the flag. The one exception is ``--rounds``: more rounds than the run had continue it past
its last one (a 2-round run resumed with ``--rounds 3`` trains a third round from round 2's model); the new
count is written to ``config.json`` so that a later ``--resume`` keeps it. Fewer rounds are refused.
Easy-to-hard keeps the difficulty splits it started with and stops when it runs out of them.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError


def find_run(ref: str, store) -> tuple[Path, dict]:
    """A run directory from a path or a store id; its saved config."""
    path = Path(ref)
    if not (path / "config.json").exists():
        run = store.get_run(ref)  # raises a UserError naming the store when unknown
        if run["command"] != "train":
            raise UserError(f"run {ref} is a '{run['command']}' run; continue it with `selfimprove "
                            f"{run['command']} --resume {ref}`", field="--resume")
        path = Path(run["config"].get("run_dir") or store.metrics(ref).get("run", {}).get("run_dir", ""))
        if not (path / "config.json").exists():
            raise UserError(f"run {ref}'s directory {path} has no config.json; cannot resume it")
    with (path / "config.json").open(encoding="utf-8") as f:
        return path, json.load(f)


def check_resume_flags(args, cfg) -> int | None:
    """Refuse flags that contradict the run being resumed, naming the flag (the stored config decides);
    returns the new number of rounds when ``--rounds`` asks for more than the run had, else None."""
    from .options import flag_of, loop_values

    for key in ("model", "task", "data", "recipe", "out"):
        if getattr(args, key, None) is not None:
            raise UserError(f"--{key} cannot change a run being resumed (it is read from the run's config); "
                            "drop it, or start a new run", field=f"--{key}")
    more = None
    for key, value in loop_values(args).items():
        stored = stored_value(cfg, key)
        value = tuple(value) if isinstance(value, list) else value
        if key == "rounds" and isinstance(value, int) and value > stored:
            more = value  # continue past the run's last round
        elif key == "rounds" and value != stored:
            raise UserError(f"--rounds {value!r} is fewer than the {stored} round(s) of the run being "
                            f"resumed; a resumed run can add rounds (--rounds > {stored}), not drop them",
                            field="--rounds")
        elif value != stored:
            flag = flag_of(key)
            raise UserError(f"{flag} {value!r} contradicts the run being resumed, which has {stored!r}; "
                            "drop the flag to resume, or start a new run", field=flag)
    return more


def stored_value(cfg, key: str):
    """The value of a flag's setting in ``cfg`` (``sft.lr``; a shared trainer setting reads SFT's; the
    method's name for ``method``)."""
    if key == "method":
        return cfg.method.name
    group, _, name = key.rpartition(".")
    for obj in ([getattr(cfg, group)] if group else [cfg, cfg.sft, cfg.method]):
        if hasattr(obj, name):
            return getattr(obj, name)
    return None


def add_rounds(run_dir: Path, saved: dict, cfg, rounds: int, store=None):
    """``cfg`` with ``rounds`` rounds, written to the run's ``config.json`` (and the store's run record) so
    that a later ``--resume`` continues to the new count; the earlier count is kept in ``rounds_history``."""
    from ..training.rundir import RunDir

    before = cfg.rounds
    cfg = cfg.replace(rounds=rounds)
    saved = {**saved, "loop": {**saved["loop"], "rounds": rounds},
             "rounds_history": [*saved.get("rounds_history", [before]), rounds]}
    RunDir(run_dir).write_json("config.json", saved)
    if store is not None and saved.get("run_id"):
        store.put_metrics(saved["run_id"], "rounds", {"history": saved["rounds_history"]})
    print(f"adding round(s) {before + 1}..{rounds} to a run of {before} round(s)", flush=True)
    return cfg
