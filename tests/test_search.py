"""Step-level search: step splitting, step values, and golden traces of beam, MCTS and DVTS on the scripted
backend; MCTS back-propagation and selection on a hand-built tree."""

import math
import re
from dataclasses import replace

import pytest

from selfimprove.backends.scripted import ScriptedBackend
from selfimprove.errors import UserError
from selfimprove.records import Example, Node, Trace
from selfimprove.strategies import get_strategy
from selfimprove.strategies.base import score_traces
from selfimprove.strategies.beam import Beam, draw
from selfimprove.strategies.dvts import DVTS
from selfimprove.strategies.mcts import MCTS, final_answer, score, select
from selfimprove.strategies.tree import Tree, backpropagate
from selfimprove.tasks.arithmetic import ArithmeticTask
from selfimprove.tasks.base import TaskBase
from selfimprove.tasks.steps import LINES, StepFormat, step_format
from selfimprove.verifiers.step_values import Likelihood, Partial, Rollout, XieCombined, make_value


class LineTask(TaskBase):
    """A free-text task: one line per step, finished at 'ANSWER n'."""

    name = "lines"
    stop = ("\n\n",)

    def prompt(self, e):
        return f"Q{e.id}:\n"

    def extract(self, text):
        m = re.search(r"ANSWER (\d+)", text or "")
        return m.group(1) if m else None

    def step_format(self):
        return StepFormat(delimiter="\n", final=r"ANSWER \d")


class Counting(ScriptedBackend):
    """Counts generate calls (one per expansion layer is the contract)."""

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        self.generate_calls = 0

    def generate(self, prompts, params):
        self.generate_calls += 1
        return super().generate(prompts, params)


def lines_reply(prompt, i):
    """Q1: step A (likely) or step B (unlikely); after A: ANSWER 5 (likely) or ANSWER 7; after B: ANSWER 7."""
    body = prompt.split(":\n", 1)[1]
    if body == "":
        return ("step A\nANSWER 5", -0.1) if i % 2 == 0 else ("step B\nANSWER 7", -1.0)
    if body == "step A\n":
        return ("ANSWER 5", -0.1) if i % 2 == 0 else ("ANSWER 7", -2.0)
    if body == "step B\n":
        return ("ANSWER 7", -0.1)
    return ("", -0.1)


def test_step_formats_split_losslessly_and_continue():
    arith = ArithmeticTask().step_format()
    text = " c6000=6000 a2100=8100 #1440"
    assert arith.split(text) == [" c6000=6000", " a2100=8100", " #1440"]
    assert "".join(arith.split(text)) == text
    assert (arith.next_prompt("P:", " c6000=6000") == "P: c6000=6000 "
            and arith.make_step("a2100=8100", False) == " a2100=8100")
    assert arith.answered(" c6000=6000 #1440") and not arith.answered(" c6000=6000")
    assert not ArithmeticTask(verify=2).step_format().judges_partial
    lines = "first\nsecond\n\nANSWER 3"
    assert LINES.split(lines) == ["first\n", "second\n", "\n", "ANSWER 3"]
    assert "".join(LINES.split(lines)) == lines
    assert LINES.next_prompt("Q:\n", "first\n") == "Q:\nfirst\n" and LINES.make_step("x", False) == "x\n"
    assert step_format(TaskBase()) == LINES  # the default hook: lines
    assert step_format(LineTask(), "\n\n").delimiter == "\n\n"
    with pytest.raises(ValueError, match="delimiter"):
        StepFormat(delimiter="")


def test_beam_golden_trace_one_call_per_layer():
    task, ex = LineTask(), [Example(id="1", question="", answer="5")]
    backend = Counting([(r"", lines_reply)])
    beam = Beam(beams=2, samples=2, tau=0.0, value="likelihood", max_steps=4)
    (t,) = score_traces(task, ex, beam.run(backend, task, ex))
    assert backend.generate_calls == 2  # layer 0 (root) and layer 1 (both beams in one call)
    nodes = [Node.from_dict(d) for d in t.steps[-1].info["nodes"]]
    assert [n.step for n in nodes] == ["", "step A\n", "step B\n", "ANSWER 5", "ANSWER 7", "ANSWER 7"]
    assert [n.parent for n in nodes] == [None, 0, 0, 1, 1, 2]
    assert nodes[1].value == pytest.approx(math.exp(-0.1)) and nodes[2].value == pytest.approx(math.exp(-1.0))
    # path likelihood: (6 x -0.1 + 8 x -0.1) / 14 tokens; B then 7: (6 x -1.0 + 8 x -0.1) / 14
    assert nodes[3].value == pytest.approx(math.exp(-0.1))
    assert nodes[5].value == pytest.approx(math.exp(-6.8 / 14))
    assert nodes[4].value == pytest.approx(math.exp(-16.6 / 14))
    assert nodes[5].info["duplicates"] == 1  # B's two samples were the same step: merged
    kept = [n.id for n in nodes if n.info.get("kept")]
    assert kept == [1, 2, 3, 5]
    assert (t.final_answer, t.correct, t.confidence) == ("5", True, pytest.approx(math.exp(-0.1)))
    assert t.completion_tokens == 6 + 6 + 8 + 8 + 8 + 8 and t.calls == 3  # 3 prompts (root, A, B)
    assert [s.kind for s in t.steps] == ["expand", "expand", "expand", "tree"]
    assert t.steps[-1].info["chosen"] == 3 and Trace.from_json(t.to_json()) == t


def test_beam_self_evaluation_steers_the_choice():
    """With lam=1 (self-evaluation only) the path P(True) likes wins although the model finds it less
    likely."""
    task, ex = LineTask(), [Example(id="1", question="", answer="7")]

    def ll(prompt, cont):  # P(True) high for anything on the B path, low otherwise
        good = "step B" in prompt or ("ANSWER 7" in prompt and "step A" not in prompt)
        return math.log(0.45 if (cont.strip().lower() == "yes") == good else 0.05)

    backend = Counting([(r"", lines_reply)], ll=ll)
    beam = Beam(beams=1, samples=2, tau=0.0, value="xie", lam=1.0, max_steps=4)
    (t,) = score_traces(task, ex, beam.run(backend, task, ex))
    assert t.final_answer == "7" and t.correct is True
    evals = [s for s in t.steps if s.kind == "step-eval"]
    assert evals and all("node" in s.info for s in evals)
    assert t.prompt_tokens > sum(len(s.prompt) for s in t.steps if s.kind == "expand")  # eval prompts counted
    # lam=0 is the likelihood alone: the likely path A wins
    beam0 = Beam(beams=1, samples=2, tau=0.0, value="xie", lam=0.0, max_steps=4)
    (t0,) = beam0.run(Counting([(r"", lines_reply)], ll=ll), task, ex)
    assert t0.final_answer == "5"


def test_stochastic_draw_is_seeded_and_prefers_high_values():
    class N:
        def __init__(self, v):
            self.value = v

    import random

    cands = [N(0.9), N(0.1), N(None), N(0.5)]
    assert [c.value for c in draw(cands, 2, 0.0, random.Random(0))] == [0.9, 0.5]
    assert draw(cands, 4, 0.0, random.Random(0))[-1].value is None  # None after every valued one
    picks = [draw(cands, 1, 1.0, random.Random(s))[0].value for s in range(400)]
    assert picks.count(0.9) > picks.count(0.5) > picks.count(0.1) > 0 and None not in picks
    assert draw(cands, 2, 0.5, random.Random(7)) == draw(cands, 2, 0.5, random.Random(7))


def _hand_tree():
    """root -> a, b; a -> c (finished)."""
    t = Tree(Example(id="x", question=""), "P")
    a = t.add(t.nodes[0], "a\n", -1.0, 2)
    b = t.add(t.nodes[0], "b\n", -2.0, 2)
    c = t.add(a, "ANSWER 1", -1.0, 8, terminal=True, answer="1", value=0.5)
    return t, a, b, c


def test_mcts_backpropagation_on_a_hand_built_tree():
    t, a, b, c = _hand_tree()
    root = t.nodes[0]
    backpropagate(t, a, 0.5)
    backpropagate(t, b, 1.0)
    backpropagate(t, c, 0.0)
    backpropagate(t, c, 1.0)
    backpropagate(t, b, None)  # an undecided value adds no visit and no value
    assert (root.visits, root.value_sum) == (4, 2.5)
    assert (a.visits, a.value_sum, a.q) == (3, 1.5, 0.5)
    assert (b.visits, b.value_sum, b.q) == (1, 1.0, 1.0)
    assert (c.visits, c.value_sum) == (2, 1.0)
    # UCT by hand: a = 0.5 + sqrt(ln 4 / 3), b = 1.0 + sqrt(ln 4 / 1) -> b
    assert score(a, 4, "uct", 1.0) == pytest.approx(0.5 + math.sqrt(math.log(4) / 3))
    assert select(t, "uct", 1.0) is b
    # with c = 0 the greedy Q decides; a larger c with PUCT priors favouring a picks a
    assert select(t, "uct", 0.0) is b
    a.info["prior"], b.info["prior"] = 0.95, 0.05
    assert score(a, 4, "puct", 2.0) == pytest.approx(0.5 + 2.0 * 0.95 * 2 / 4)
    assert select(t, "puct", 2.0) is c  # a wins at the root; under a, its only child c (finished) is selected
    # final answers: most visits walks root -> a -> c
    chosen, answer, conf, _ = final_answer(LineTask(), t, "visits")
    assert chosen is c and answer == "1" and conf == 0.5
    # no finished path yet: 'value' and 'visits' fall back to the rollouts of the best / most visited node
    t2 = Tree(Example(id="y", question=""), "P")
    x = t2.add(t2.nodes[0], "x\n", -1.0, 2, info={"rollout_answers": ["4", "4", None]})
    y = t2.add(t2.nodes[0], "y\n", -1.0, 2, info={"rollout_answers": ["9"]})
    backpropagate(t2, x, 0.2)
    backpropagate(t2, x, 0.2)
    backpropagate(t2, y, 0.9)
    assert final_answer(LineTask(), t2, "value")[1:3] == ("9", 1.0)
    assert final_answer(LineTask(), t2, "visits")[1:3] == ("4", 2 / 3)
    assert final_answer(LineTask(), t2, "visits")[3]["fallback"] == "rollouts"
    # an unvisited child is tried first under UCT
    d = t.add(t.nodes[0], "d\n", -1.0, 2)
    assert select(t, "uct", 1.0) is d


def test_mcts_golden_trace_with_rollouts():
    task, ex = LineTask(), [Example(id="1", question="", answer="5")]
    backend = Counting([(r"", lines_reply)])
    mcts = MCTS(iterations=3, k=2, rollouts=2, c=1.0)
    (t,) = score_traces(task, ex, mcts.run(backend, task, ex))
    nodes = [Node.from_dict(d) for d in t.steps[-1].info["nodes"]]
    by = {n.id: n for n in nodes}
    # iteration 0 expands the root: A (rollouts 5, 7 -> but majority of the pool {5, 7, 7, 7} is 7) and B
    assert [n.step for n in nodes[:3]] == ["", "step A\n", "step B\n"]
    a, b = by[1], by[2]
    assert a.info["rollout_answers"] == ["5", "7"] and b.info["rollout_answers"] == ["7", "7"]
    assert a.value == 0.5 and b.value == 1.0
    # invariants after back-propagation: a node's visits = its own evaluation + its children's visits
    # (a finished node selected again is re-counted with its value, so it may hold several visits)
    for n in nodes:
        kids = [by[i] for i in n.info["children"]]
        if n.terminal:
            assert n.visits >= 1 and n.value_sum == pytest.approx(n.visits * n.value)
            continue
        own = 1 if (n.parent is not None and n.value is not None) else 0
        assert n.visits == own + sum(k.visits for k in kids)
        assert n.value_sum == pytest.approx((n.value if own else 0.0) + sum(k.value_sum for k in kids))
    # it0 expands the root (A 0.5, B 1.0); it1: UCT picks B (1.0 + sqrt(ln 2)) over A (0.5 + sqrt(ln 2)); B's
    # two samples are the same finished step (merged), valued 1.0 against the pool {5, 7, 7, 7, 7}; it2: B
    # again (1 + sqrt(ln 3 / 2) > 0.5 + sqrt(ln 3)), so its finished child is re-counted without a model call
    assert by[0].visits == 4 and by[2].visits == 3 and by[3].visits == 2 and by[1].visits == 1
    # it0: expand + rollouts; it1: expand (a finished child needs no rollout)
    assert backend.generate_calls == 3
    assert t.final_answer == "7" and t.correct is False  # the rollout majority misleads it here: recorded
    rollouts = [s for s in t.steps if s.kind == "rollout"]
    assert rollouts and t.completion_tokens == sum(c.completion_tokens for s in t.steps
                                                   for c in s.completions)
    assert Trace.from_json(t.to_json()) == t


def test_dvts_independent_subtrees():
    task, ex = LineTask(), [Example(id="1", question="", answer="5")]
    backend = Counting([(r"", lines_reply)])
    dvts = DVTS(subtrees=2, width=1, value="likelihood")
    (t,) = score_traces(task, ex, dvts.run(backend, task, ex))
    tree = t.steps[-1].info
    nodes = [Node.from_dict(d) for d in tree["nodes"]]
    # the root's 2 samples go one to each subtree; each subtree continues only its own path
    assert [n.step for n in nodes] == ["", "step A\n", "step B\n", "ANSWER 5", "ANSWER 7"]
    assert nodes[1].info["subtree"] == 0 and nodes[2].info["subtree"] == 1
    assert tree["subtrees"] == [3, 4] and t.final_answer == "5" and t.correct is True
    assert backend.generate_calls == 2
    (tm,) = DVTS(subtrees=2, width=1, value="likelihood", final="majority").run(backend, task, ex)
    assert tm.final_answer == "5"  # a 1-1 tie: the first finished subtree's answer


def test_step_values():
    ex = Example(id="1", question="", answer="5")
    p_open = Partial(example=ex, prompt="Q1:\n", prefix="step A\n", logprob=-0.6, tokens=6)
    p_done = Partial(example=ex, prompt="Q1:\n", prefix="step B\nANSWER 7", terminal=True, answer="7",
                     logprob=-6.8, tokens=14)
    lik = Likelihood().evaluate([p_open, p_done])
    assert lik.values == [pytest.approx(math.exp(-0.1)), pytest.approx(math.exp(-6.8 / 14))]
    backend = ScriptedBackend([(r"", lines_reply)])
    task = LineTask()
    ro = Rollout(backend, task, m=2).evaluate([p_open, p_done], seed=1)
    # pool: A's rollouts 5, 7 and the finished path's 7 -> majority 7
    assert ro.parts[0]["rollout_answers"] == ["5", "7"] and ro.values == [0.5, 1.0]
    # the majority is over every answer the search reached for the example: an earlier pool of 5s outvotes
    pooled = Rollout(backend, task, m=2).evaluate([replace(p_open, pool=("5", "5", "5"))])
    assert pooled.values == [0.5] and pooled.parts[0]["reference"] == "5"
    gold = Rollout(backend, task, m=2, gold=True).evaluate([p_open, p_done])
    assert gold.values == [0.5, 0.0] and gold.parts[0]["reference"] == "gold"
    with pytest.raises(ValueError, match="training"):
        make_value("rollout-gold", backend, task, task.step_format())
    with pytest.raises(UserError, match="rollout-gold"):
        get_strategy("beam:value=rollout-gold")
    # xie: likelihood^(1-lam) * P(True)^lam
    xb = ScriptedBackend([(r"", lines_reply)],
                         ll=lambda p, c: math.log(0.4 if c.strip().lower() == "yes" else 0.1))  # P(True) 0.8
    x = XieCombined(xb, task, task.step_format(), lam=0.5).evaluate([p_open])
    assert x.values[0] == pytest.approx(math.exp(-0.1) ** 0.5 * 0.8 ** 0.5)
    assert x.parts[0]["self_eval"] == pytest.approx(0.8) and len(x.steps[0]) == 1


def test_self_eval_refuses_partials_the_verify_format_cannot_show():
    task = ArithmeticTask(verify=2)
    ex = task.examples("dev")[0]
    backend = ScriptedBackend([(r"", ["x"])])
    v = make_value("self-eval", backend, task, task.step_format())
    out = v.evaluate([Partial(example=ex, prompt=task.prompt(ex), prefix=" a1000=1000")])
    assert out.values == [None] and "finished answers" in out.parts[0]["why"] and out.steps == [[]]


def test_search_on_the_arithmetic_scratchpad():
    """The opening-delimiter format: each expansion prompt ends with the delimiter, steps start with it."""
    task = ArithmeticTask()
    ex = [task.make_example(task.sample_problem(__import__("random").Random(1), (2, 2), (1, 1)), "t")]
    p = task.problem(ex[0])
    gold = task.solution(ex[0])
    steps = task.step_format().split(gold)

    def reply(prompt, i):
        done = prompt[len(task.prompt(ex[0])):]
        rest = gold[len(done) - 1:] if done else gold  # the expansion prompt ends with the delimiter
        return (rest[1:] if done else rest, -0.05)

    backend = Counting([(r"", reply)])
    (t,) = score_traces(task, ex, Beam(beams=1, samples=1, value="likelihood").run(backend, task, ex))
    assert t.final_answer == str(p.total) and t.correct is True
    nodes = t.steps[-1].info["nodes"]
    assert ([n["step"] for n in nodes[1:]] == steps and nodes[-1]["terminal"]
            and nodes[-1]["info"]["ended"] == "answered")
    assert all(c[0].endswith(" ") for c in backend.calls)


def test_registered_with_their_settings():
    from selfimprove.strategies.base import describe

    m = get_strategy("mcts:iterations=2,k=2,selection=puct,final=majority")
    assert isinstance(m, MCTS) and describe(m) == "mcts:iterations=2,k=2,selection=puct,final=majority"
    assert get_strategy("beam:delimiter=\\n\\n").step_format(LineTask()).delimiter == "\n\n"
    assert isinstance(get_strategy("dvts"), DVTS)


def test_settings_validate():
    for bad in ("beam:beams=0", "mcts:selection=foo", "dvts:final=foo", "mcts:value=bogus", "beam:lam=2"):
        with pytest.raises(UserError):
            get_strategy(bad)


def test_search_on_a_chat_backend_continues_the_assistant_reply():
    """With a chat template the partial solution is the start of the assistant's reply (a final assistant
    message), never text appended to the user's message; without one the prompt is prompt + prefix, as
    before."""
    from selfimprove.backends.base import Capabilities
    from selfimprove.chat import continue_reply, conversation, messages

    convo = conversation([("system", "Solve it."), ("user", "2+2?")])
    turned = continue_reply(convo, "2+2=4\n", chat=True)
    assert messages(turned)[-1] == {"role": "assistant", "content": "2+2=4\n"}
    assert messages(turned)[:-1] == messages(convo)
    assert continue_reply(turned, "The answer is 4.", chat=True) == turned + "The answer is 4."
    assert continue_reply(convo, "2+2=4\n", chat=False) == convo + "2+2=4\n"
    assert continue_reply(convo, "", chat=True) == convo

    class ChatTask(LineTask):
        def prompt(self, example):
            return conversation([("system", "Solve it."), ("user", super().prompt(example))])

    seen: list[str] = []

    def chat_reply(prompt, i):  # the reply so far is the final assistant message, if any
        seen.append(prompt)
        last = messages(prompt)[-1]
        return lines_reply("Q1:\n" + (last["content"] if last["role"] == "assistant" else ""), i)

    chat = ScriptedBackend([(r"", chat_reply)])
    chat.capabilities = Capabilities(chat_template=True, logprobs=True, loglikelihood=True)
    task, ex = ChatTask(), [Example(id="1", question="", answer="5")]
    (t,) = score_traces(task, ex, Beam(beams=2, samples=2, tau=0.0, value="likelihood", max_steps=4).run(
        chat, task, ex))
    assert (t.final_answer, t.correct) == ("5", True)
    deeper = [p for p in seen if len(messages(p)) > 2]
    assert deeper and len(deeper) < len(seen), "the search never continued a partial solution"
    assert {messages(p)[-1]["content"] for p in deeper} == {"step A\n", "step B\n"}
    assert all(messages(p)[:2] == messages(task.prompt(ex[0])) for p in seen)


def test_search_on_a_real_model_stops_steps_at_the_delimiter(micro_model_dir):
    """The micro model through the hf backend: each step is one scratchpad entry (the stop string works),
    every prefix is its parent's plus its step, tokens add up, one generate call per expansion layer."""
    from selfimprove.backends.hf import HFBackend

    class CountingHF(HFBackend):
        generate_calls = 0

        def generate(self, prompts, params):
            if params.stop and " " in params.stop:
                CountingHF.generate_calls += 1
            return super().generate(prompts, params)

    task = ArithmeticTask(terms=(2, 3))
    examples = task.examples("dev")[:2]
    backend = CountingHF(str(micro_model_dir))
    small = {"max_steps": 5, "step_tokens": 16, "max_tokens": 48}
    for strategy in (Beam(beams=2, samples=2, value="xie", **small), MCTS(iterations=2, k=2, **small),
                     DVTS(subtrees=2, width=2, value="likelihood", **small)):
        CountingHF.generate_calls = 0
        traces = score_traces(task, examples, strategy.run(backend, task, examples))
        depth = 0
        for t in traces:
            nodes = {d["id"]: d for d in t.steps[-1].info["nodes"]}
            for n in nodes.values():
                if n["parent"] is not None:
                    assert n["prefix"] == nodes[n["parent"]]["prefix"] + n["step"]
                    assert n["step"] == "" or (n["step"].startswith(" ") and " " not in n["step"][1:])
            assert t.completion_tokens == sum(c.completion_tokens for s in t.steps for c in s.completions)
            assert t.final_answer is None or t.final_answer == task.extract(nodes[t.steps[-1].info["chosen"]][
                "prefix"]) or strategy.name == "mcts"
            depth = max([depth] + [nodes[s.info["node"]]["depth"] for s in t.steps if s.kind == "expand"])
        if strategy.name == "mcts":  # one expansion call per iteration at most
            assert 1 <= CountingHF.generate_calls <= strategy.iterations
        else:  # one call per layer: the deepest expanded node's depth + 1
            assert CountingHF.generate_calls == depth + 1


def test_eval_cli_runs_every_search_on_the_scripted_model(tmp_path, capsys):
    """`selfimprove eval --strategy beam|mcts|dvts` end to end (the scripted model continues partial
    scratchpads and its P(True) judges running sums so far): traces stored with every node; search beats
    greedy here."""
    from selfimprove.cli.main import main
    from selfimprove.store.runs import RunStore

    store = tmp_path / "runs.db"
    assert main(["eval", "--model", "scripted", "--task", "arithmetic", "--split", "dev", "--limit", "30",
                 "--store", str(store), "--strategy", "greedy", "--strategy",
                 "beam:beams=2,samples=4,value=self-eval",
                 "--strategy", "mcts:iterations=6,k=2", "--strategy", "dvts:subtrees=2,width=4"]) == 0
    out = capsys.readouterr().out
    assert "beam" in out and "mcts" in out and "dvts" in out
    s = RunStore(str(store))
    (run,) = s.list_runs()
    acc = {}
    scopes = s.scopes(run["id"])
    assert len(scopes) == 4, scopes
    for scope in scopes:
        traces = s.traces(run["id"], scope)
        assert len(traces) == 30
        name = scope.split(":")[0]
        acc[name] = sum(bool(t.correct) for t in traces) / 30
        if name != "greedy":
            assert all(t.steps[-1].kind == "tree" and len(t.steps[-1].info["nodes"]) > 1 for t in traces)
    assert acc["beam"] > acc["greedy"], acc
