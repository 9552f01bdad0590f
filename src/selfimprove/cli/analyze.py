"""``selfimprove analyze``: correction and calibration metrics for JSONL files produced anywhere.

- ``analyze correction --input FILE.jsonl``: rows ``{"id", "initial_correct", "final_correct"}`` (several rows
  with one id = several samples of that question; optional ``initial_answer`` / ``final_answer`` give the
  changed-answer rate) → ``metrics.correction.correction``.
- ``analyze calibration --input FILE.jsonl [--bins 10]``: rows ``{"confidence", "correct"}`` →
  ``metrics.calibration.calibration``.
- Either command also reads what ``selfimprove runs export`` writes (one trace per line, with ``scope`` and
  ``example_id``): ``--strategy LABEL`` picks one strategy of the run (required when it has several), and the
  numbers are computed exactly as the HTML report computes them (``correction_from_traces`` /
  ``calibration_from_traces`` with ``unparsed_as_wrong=True``: an unparseable answer counts as wrong and stays
  in the denominator, as in accuracy).

Each prints one JSON object on one line. ``null`` correctness or confidence is failure-as-data: counted
(``undecided`` / ``n_missing``), never an error. A malformed row (bad JSON, not an object, missing field,
wrong type, confidence outside [0, 1]) raises ``UserError`` naming the file, line and field (exit status 2).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from ..errors import UserError

CORRECTION_EXAMPLE = """  selfimprove analyze correction --input corrections.jsonl
      rows: {"id": "q1", "initial_correct": true, "final_correct": false}
"""
CALIBRATION_EXAMPLE = """  selfimprove analyze calibration --input confidences.jsonl --bins 10
      rows: {"confidence": 0.83, "correct": true}
"""
EXPORT_EXAMPLE = """  selfimprove runs export RUN_ID --out run.jsonl
  selfimprove analyze correction --input run.jsonl --strategy self-correct
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze", help="correction and calibration metrics for a JSONL file",
        description="Correction and calibration metrics for JSONL files produced anywhere; prints one JSON "
                    "object. Malformed rows exit 2 with file, line and field.",
        epilog="examples:\n" + CORRECTION_EXAMPLE + CALIBRATION_EXAMPLE + EXPORT_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="analysis", metavar="ANALYSIS", required=True,
                                parser_class=type(parser))
    corr = sub.add_parser(
        "correction", help="Acc1, Acc2, delta, transitions, CL, CS, RSS (Confidence v.s. Critique)",
        description="Acc1, Acc2, delta, transitions cc/cw/wc/ww, CL, CS and RSS (Confidence v.s. Critique, "
                    "arXiv:2412.19513); several rows with one id are several samples of that question.",
        epilog="example:\n" + CORRECTION_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    corr.add_argument("--input", required=True, metavar="FILE.jsonl",
                      help="rows with id, initial_correct, final_correct (true/false/null), or a runs export")
    calib = sub.add_parser(
        "calibration", help="ECE, Brier, AUROC, selective accuracy, reliability diagram",
        description="ECE (equal-width bins), Brier, AUROC, AUACC, selective accuracy and reliability "
                    "diagram data for self-evaluation confidences.",
        epilog="example:\n" + CALIBRATION_EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    calib.add_argument("--input", required=True, metavar="FILE.jsonl",
                       help="rows with confidence (0..1 or null) and correct (true/false/null)")
    calib.add_argument("--bins", type=int, default=10, help="equal-width ECE bins (default 10)")
    for p in (corr, calib):
        p.add_argument("--strategy", metavar="LABEL",
                       help="with a runs export: the strategy to analyse (its table label, or its name when "
                            "only one label has it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.analysis == "correction":
        result = analyze_correction(args.input, strategy=args.strategy)
    else:
        if args.bins < 1:
            raise UserError(f"--bins must be a positive integer, got {args.bins}", field="--bins")
        result = analyze_calibration(args.input, bins=args.bins, strategy=args.strategy)
    print(json.dumps(result))
    return 0


def analyze_correction(path: str, strategy: str | None = None) -> dict[str, Any]:
    """Read a correction JSONL file or a runs export (validating every row) and return ``correction``'s
    dict."""
    from ..metrics.correction import correction, correction_from_traces

    rows = list(_read_rows(path))
    if _is_export(rows):
        return correction_from_traces(_export_traces(rows, path, strategy), unparsed_as_wrong=True)
    _no_strategy(strategy, path)
    ids, initial, final, answers = [], [], [], []
    for line, row in rows:
        ids.append(_field(row, "id", (str, int), path, line))
        initial.append(_field(row, "initial_correct", (bool,), path, line, nullable=True))
        final.append(_field(row, "final_correct", (bool,), path, line, nullable=True))
        answers.append(tuple(_field(row, k, (str,), path, line, nullable=True) if k in row else _ABSENT
                             for k in ("initial_answer", "final_answer")))
    # answers are optional, but all-or-nothing: a file that has them on some rows only is an error
    given = [all(x is not _ABSENT for x in pair) for pair in answers]
    if any(given) and not all(given):
        line, row = rows[given.index(False)]
        missing = "initial_answer" if "initial_answer" not in row else "final_answer"
        raise UserError("other rows give initial_answer and final_answer; give both on every row or on none",
                        path=path, line=line, field=missing)
    kwargs = {}
    if any(given):
        kwargs = {"initial_answers": [p[0] for p in answers], "final_answers": [p[1] for p in answers]}
    return correction(ids, initial, final, **kwargs)


def analyze_calibration(path: str, *, bins: int = 10, strategy: str | None = None) -> dict[str, Any]:
    """Read a calibration JSONL file or a runs export (validating every row) and return ``calibration``'s
    dict."""
    from ..metrics.calibration import calibration, calibration_from_traces

    rows = list(_read_rows(path))
    if _is_export(rows):
        return calibration_from_traces(_export_traces(rows, path, strategy), unparsed_as_wrong=True,
                                       bins=bins)
    _no_strategy(strategy, path)
    confidences, correct = [], []
    for line, row in rows:
        conf = _field(row, "confidence", (int, float), path, line, nullable=True)
        if conf is not None and not (math.isfinite(conf) and 0.0 <= conf <= 1.0):
            raise UserError(f"confidence must be a probability in [0, 1], got {conf!r}",
                            path=path, line=line, field="confidence")
        confidences.append(conf)
        correct.append(_field(row, "correct", (bool,), path, line, nullable=True))
    return calibration(confidences, correct, bins=bins)


def _is_export(rows: list[tuple[int, dict]]) -> bool:
    """A ``runs export`` file: its rows are traces labelled with their strategy's scope."""
    return "scope" in rows[0][1] and "example_id" in rows[0][1]


def _no_strategy(strategy: str | None, path: str) -> None:
    if strategy is not None:
        raise UserError("--strategy picks a strategy from a `selfimprove runs export` file; this file has "
                        "plain rows", path=path, field="--strategy")


def _export_traces(rows: list[tuple[int, dict]], path: str, strategy: str | None) -> list:
    """The traces of one strategy of a runs export (``--strategy`` names its scope, or a strategy name that
    only one scope has); a run with several strategies needs ``--strategy``."""
    from ..records import Trace

    scopes: dict[str, list[tuple[int, dict]]] = {}
    for line, row in rows:
        scope = _field(row, "scope", (str,), path, line)
        scopes.setdefault(scope, []).append((line, row))
    if strategy is None:
        if len(scopes) > 1:
            raise UserError(f"the export holds {len(scopes)} strategies ({', '.join(scopes)}); choose "
                            "one with --strategy", path=path, field="--strategy")
        chosen = next(iter(scopes))
    elif strategy in scopes:
        chosen = strategy
    else:
        named = [s for s in scopes if s.split(":", 1)[0] == strategy]
        if len(named) != 1:
            why = "several strategies are named" if named else "no strategy in the export is"
            raise UserError(f"{why} {strategy!r}; labels: {', '.join(scopes)}", path=path, field="--strategy")
        chosen = named[0]
    traces = []
    for line, row in scopes[chosen]:
        try:
            traces.append(Trace.from_dict({k: v for k, v in row.items() if k not in ("run_id", "scope")}))
        except (TypeError, ValueError, KeyError) as e:
            raise UserError(f"not a trace of `runs export`: {e}", path=path, line=line) from None
    return traces


_ABSENT = object()
_TYPE_NAMES = {bool: "true/false", str: "a string", int: "a number", float: "a number"}


def _read_rows(path: str):
    """Yield (1-based line number, dict) for each non-blank line; UserError on anything else."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError("file not found", path=path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"cannot read file: {e}", path=path) from None
    n = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"not valid JSON ({e.msg} at column {e.colno})",
                            path=path, line=line_no) from None
        if not isinstance(row, dict):
            raise UserError(f"each line must be a JSON object, got {type(row).__name__}",
                            path=path, line=line_no)
        n += 1
        yield line_no, row
    if n == 0:
        raise UserError("no rows: the file is empty", path=path)


def _field(row: dict, name: str, types: tuple[type, ...], path: str, line: int, *,
           nullable: bool = False) -> Any:
    if name not in row:
        raise UserError("missing field", path=path, line=line, field=name)
    value = row[name]
    if value is None and nullable:
        return None
    # bool is an int in Python, so true/false must not pass as a number or an id
    ok = isinstance(value, types) and (bool in types or not isinstance(value, bool))
    if not ok:
        expected = " or ".join(dict.fromkeys(_TYPE_NAMES[t] for t in types))
        if nullable:
            expected += " or null"
        raise UserError(f"expected {expected}, got {json.dumps(value)}", path=path, line=line, field=name)
    return value
