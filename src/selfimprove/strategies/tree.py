"""The machinery every step-level search shares: trees of partial solutions, batched expansion and valuation,
back-propagation, and the final choice among finished paths.

- ``expand`` sends ONE ``backend.generate`` call for all frontier nodes of all examples (one per distinct
  sample count, which is one call in every search here): each node's next-step prompt, ``n`` samples, stopping
  at the step delimiter. Identical sibling steps are merged (their tokens stay counted in the expansion step).
- ``evaluate`` values every new node of every example with one ``StepValue.evaluate`` call.
- Every model call becomes a ``Step`` of the example's trace (``expand``, ``step-eval``, ``rollout``), so the
  trace's tokens include expansions, rollouts and self-evaluation; ``tree_step`` records every node as a
  ``records.Node`` in a final ``tree`` step.

Search settings common to beam, MCTS and DVTS live in ``SearchSettings``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..answers import majority
from ..chat import continue_reply
from ..records import Example, Node, SamplingParams, Step
from ..tasks.steps import StepFormat, decode_delimiter, step_format
from ..verifiers.step_values import VALUES, Partial, make_value
from .weighted import weighted_vote

FINALS = ("value", "majority", "weighted")


@dataclass(frozen=True)
class SearchSettings:
    """Settings every step-level search shares."""

    value: str = "xie"
    """Step value: likelihood, self-eval, xie (likelihood^(1-lam) * self-eval^lam), rollout or prm."""
    lam: float = 0.5
    """Weight of self-evaluation in the xie value (0: likelihood only, 1: self-evaluation only)."""
    rollouts: int = 4
    """Rollouts per node for value=rollout."""
    temperature: float = 0.8
    """Sampling temperature of next steps and rollouts."""
    step_tokens: int = 64
    """Token budget of one step; a step that hits it ends its path."""
    max_steps: int = 16
    """Depth limit: a path ends after this many steps."""
    max_tokens: int = 256
    """Token budget of one rollout (the rest of a solution)."""
    delimiter: str = ""
    """Step delimiter overriding the task's ('\\n', '\\n\\n', ...; escapes allowed); empty: the task's own."""
    seed: int = 0
    """Sampling seed (each layer and purpose derives its own)."""
    prm: str = ""
    """Directory of a trained process reward model, for value=prm."""
    prm_aggregate: str = "last"
    """How value=prm combines a partial solution's step scores: last, min or product."""

    def __post_init__(self) -> None:
        if self.value not in VALUES or self.value == "rollout-gold":
            raise ValueError(f"value must be one of likelihood, self-eval, xie, rollout, prm, got "
                             f"{self.value!r} "
                             "(rollout-gold reads gold answers: training only)")
        for name in ("rollouts", "step_tokens", "max_steps", "max_tokens"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {self.lam}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.value == "prm" and not self.prm:
            raise ValueError("value=prm needs the PRM's directory: prm=DIR (train one with "
                             "scripts/prm_study.py)")
        if self.prm_aggregate not in ("last", "min", "product"):
            raise ValueError(f"prm_aggregate must be last, min or product, got {self.prm_aggregate!r}")

    def step_format(self, task) -> StepFormat:
        return step_format(task, decode_delimiter(self.delimiter) if self.delimiter else None)

    def make_value(self, backend, task, fmt: StepFormat):
        return make_value(self.value, backend, task, fmt, lam=self.lam, rollouts=self.rollouts,
                          temperature=self.temperature, max_tokens=self.max_tokens, prm=self.prm,
                          prm_aggregate=self.prm_aggregate)

    def seed_for(self, purpose: int, layer: int) -> int:
        """A distinct seed per (purpose, layer): the hf backend seeds sample i by (seed, prompt, i), so the
        expansion and the rollouts of one node must not share a seed."""
        return (self.seed * 1_000_003 + purpose * 10_007 + layer) % (2 ** 31)


def uses_chat(backend) -> bool:
    """Whether the backend applies a chat template: a partial solution is then sent as the start of the
    assistant's reply (``chat.continue_reply``), never appended to the user's message."""
    return bool(getattr(backend.capabilities, "chat_template", False))


@dataclass
class TreeNode:
    """A mutable node while the search runs; ``record()`` freezes it into a ``records.Node``."""

    id: int
    parent: int | None
    depth: int
    step: str
    prefix: str
    logprob: float | None = 0.0
    tokens: int = 0
    path_logprob: float | None = 0.0
    path_tokens: int = 0
    terminal: bool = False
    answer: str | None = None
    value: float | None = None
    visits: int = 0
    value_sum: float = 0.0
    children: list[int] = field(default_factory=list)
    info: dict = field(default_factory=dict)

    @property
    def q(self) -> float | None:
        return self.value_sum / self.visits if self.visits else None

    def record(self) -> Node:
        return Node(id=self.id, parent=self.parent, depth=self.depth, step=self.step, prefix=self.prefix,
                    value=self.value, visits=self.visits, value_sum=self.value_sum, tokens=self.tokens,
                    logprob=self.logprob, terminal=self.terminal, answer=self.answer,
                    info={**self.info, "children": list(self.children)})


class Tree:
    """One example's search tree; ``steps`` collects the model calls made for it, in order."""

    def __init__(self, example: Example, prompt: str) -> None:
        self.example, self.prompt = example, prompt
        self.nodes = [TreeNode(id=0, parent=None, depth=0, step="", prefix="")]
        self.steps: list[Step] = []
        self.answers: list[str | None] = []
        """Every answer the search reached (rollouts and finished paths): the rollout value's majority
        pool."""

    def add(self, parent: TreeNode, step: str, logprob: float | None, tokens: int, **kw) -> TreeNode:
        lp = None if logprob is None or parent.path_logprob is None else parent.path_logprob + logprob
        node = TreeNode(id=len(self.nodes), parent=parent.id, depth=parent.depth + 1, step=step,
                        prefix=parent.prefix + step, logprob=logprob, tokens=tokens, path_logprob=lp,
                        path_tokens=parent.path_tokens + tokens, **kw)
        self.nodes.append(node)
        parent.children.append(node.id)
        return node

    def path(self, node: TreeNode) -> list[TreeNode]:
        """Root … node."""
        out = [node]
        while out[-1].parent is not None:
            out.append(self.nodes[out[-1].parent])
        return out[::-1]

    def leaves(self) -> list[TreeNode]:
        return [n for n in self.nodes if n.terminal]

    def partial(self, node: TreeNode) -> Partial:
        return Partial(example=self.example, prompt=self.prompt, prefix=node.prefix, terminal=node.terminal,
                       answer=node.answer, logprob=node.path_logprob, tokens=node.path_tokens,
                       pool=tuple(self.answers))


def expand(backend, task, fmt: StepFormat, settings: SearchSettings,
           frontier: Sequence[tuple[Tree, TreeNode, int]],
           layer: int) -> list[list[TreeNode]]:
    """Sample next steps for every (tree, node, n) of the frontier; return the new children of each entry.

    One ``generate`` call per distinct n (one in practice). A child ends its path (``terminal``) when its text
    matches the task's final pattern, when the step came back empty, hit ``step_tokens`` or failed, or at
    ``max_steps``; a finished path's ``answer`` is ``task.extract`` of its text."""
    stop = tuple(dict.fromkeys((fmt.delimiter, *task.stop)))
    out: list[list[TreeNode]] = [[] for _ in frontier]
    for n in sorted({n for _, _, n in frontier}):
        idx = [i for i, (_, _, m) in enumerate(frontier) if m == n]
        params = SamplingParams(n=n, temperature=settings.temperature, max_tokens=settings.step_tokens,
                                stop=stop,
                                seed=settings.seed_for(1, layer))
        prompts = [continue_reply(frontier[i][0].prompt, fmt.next_prompt("", frontier[i][1].prefix),
                                  uses_chat(backend)) for i in idx]
        for i, prompt, comps in zip(idx, prompts, backend.generate(prompts, params), strict=True):
            tree, node, _ = frontier[i]
            out[i] = _children(task, fmt, settings, tree, node, comps)
            tree.steps.append(Step(kind="expand", prompt=prompt, completions=tuple(comps),
                                   info={"node": node.id, "children": [c.id for c in out[i]]}))
    return out


def _children(task, fmt: StepFormat, settings: SearchSettings, tree: Tree, node: TreeNode,
              comps) -> list[TreeNode]:
    seen: dict[str, TreeNode] = {}
    for c in comps:
        why = None
        if not c.ok:
            why = f"request failed: {c.error}"
        elif c.finish_reason == "length":
            why = f"step hit step_tokens={settings.step_tokens}"
        elif not c.text.strip():
            why = "stopped"
        if why is None and fmt.answered(node.prefix + fmt.make_step(c.text, ended=True)):
            why = "answered"
        step = "" if why == "stopped" or not c.ok else fmt.make_step(c.text, ended=why is not None)
        if step in seen:  # an identical sibling: merged, its tokens stay counted in the expand step
            seen[step].info["duplicates"] = seen[step].info.get("duplicates", 0) + 1
            continue
        prefix = node.prefix + step
        if why is None and node.depth + 1 >= settings.max_steps:
            why = f"max_steps={settings.max_steps}"
        terminal = why is not None
        seen[step] = tree.add(node, step, c.sum_logprob if c.ok else None, c.completion_tokens,
                              terminal=terminal, answer=task.extract(prefix) if terminal else None,
                              info={"ended": why} if terminal else {})
    return list(seen.values())


def evaluate(value, trees_nodes: Sequence[tuple[Tree, TreeNode]], seed: int) -> None:
    """Value every (tree, node) with one batched call; set ``node.value`` and record the parts and calls."""
    if not trees_nodes:
        return
    result = value.evaluate([t.partial(n) for t, n in trees_nodes], seed=seed)
    for (tree, node), v, parts, steps in zip(trees_nodes, result.values, result.parts, result.steps,
                                             strict=True):
        node.value = v
        node.info.update(parts)
        tree.answers.extend(parts.get("rollout_answers", ()))
        spent = sum(c.completion_tokens for s in steps for c in s.completions)
        if spent:
            node.info["value_tokens"] = spent
        tree.steps.extend(dataclasses.replace(s, info={**s.info, "node": node.id}) for s in steps)


def backpropagate(tree: Tree, node: TreeNode, value: float | None) -> None:
    """Add one visit with ``value`` to ``node`` and every ancestor (MCTS). A None value (the step value could
    not decide) adds nothing: the node stays unvisited, so selection tries it again rather than reading it as
    0."""
    if value is None:
        return
    for n in tree.path(node):
        n.visits += 1
        n.value_sum += value


def choose(task, leaves: Sequence[TreeNode],
           how: str) -> tuple[TreeNode | None, str | None, float | None, dict]:
    """The final answer among finished paths: (chosen node, answer, confidence, info).

    ``value``: the leaf with the highest value (ties and Nones: the earliest leaf; confidence = its value);
    ``majority``: the most common answer (confidence = its share of all leaves); ``weighted``: answers
    weighted by value (confidence = its share of the total value). Unparseable answers never win but stay
    counted."""
    if not leaves:
        return None, None, None, {"leaves": 0}
    info = {"leaves": len(leaves), "unparseable": sum(n.answer is None for n in leaves)}
    if how == "value":
        valued = [n for n in leaves if n.value is not None]
        best = max(valued, key=lambda n: n.value) if valued else leaves[0]
        return best, best.answer, best.value, {**info, "unvalued": len(leaves) - len(valued)}
    answers = [n.answer for n in leaves]
    if how == "majority":
        winner, votes, _ = majority(answers, task.equivalent)
        conf = votes / len(leaves)
    else:
        weights = [0.0 if n.value is None else n.value for n in leaves]
        winner, w, _ = weighted_vote(answers, weights, task.equivalent)
        conf = w / sum(weights) if sum(weights) > 0 else None
    chosen = next((n for n in leaves if winner is not None and task.equivalent(n.answer, winner)), None)
    return chosen, winner, conf, info


def tree_step(tree: Tree, chosen: TreeNode | None, how: str, **info) -> Step:
    """The final step of a search trace: every node as a JSON-ready ``records.Node``, the choice made and (in
    ``finals``) the answer every other final rule would have given on the same tree."""
    return Step(kind="tree", info={"nodes": [n.record().to_dict() for n in tree.nodes],
                                   "chosen": None if chosen is None else chosen.id, "final": how, **info})


def first_answer(tree: Tree) -> str | None:
    """The answer of the first path that finished (the trace's ``initial_answer``)."""
    return next((n.answer for n in tree.nodes if n.terminal), None)


def softmax_priors(nodes: Sequence[TreeNode]) -> list[float]:
    """Sibling priors from each step's length-normalised log-probability (PUCT); uniform without log-probs."""
    scores = [n.logprob / n.tokens if n.logprob is not None and n.tokens else None for n in nodes]
    if any(s is None for s in scores):
        return [1.0 / len(nodes)] * len(nodes)
    top = max(scores)
    w = [math.exp(s - top) for s in scores]
    return [x / sum(w) for x in w]
