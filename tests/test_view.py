"""The run viewer (``selfimprove view``) over a store of real runs: an eval run of three strategies (scripted
backend through the runner) and one round of ScPO (real TRL training on the tiny random model).

Server-side (Starlette's test client): the store is opened read-only and left unchanged, URL parameters cannot
reach the file system, model text is escaped, credentials in a config are not shown, and the correction cells
and paired tests agree with the metrics module. In a real browser (headless Chromium driven by Playwright):
every page kind loads, a click from a table cell leads to the right examples and the example page shows the
gold answer and each strategy's answers, a completion holding ``<script>`` is shown and not run; a screenshot
of each page kind is saved under the test's temporary directory (``SELFIMPROVE_SCREENSHOTS=DIR`` keeps them).
The browser tests skip, with the reason, where Playwright or Chromium is missing (``make browser``)."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from view_runs import PAYLOAD, build_eval_run, build_training_run

from selfimprove.errors import UserError
from selfimprove.metrics.correction import correction_from_traces
from selfimprove.metrics.stats import mcnemar_exact
from selfimprove.report.sections import outcomes
from selfimprove.store.runs import RunStore
from selfimprove.tasks import get_task

pytest.importorskip("starlette", reason="the viewer needs the [view] extra (pip install 'selfimprove[view]')")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_random_model_dir):
    tmp = tmp_path_factory.mktemp("viewer")
    store = tmp / "runs.db"
    eval_id = build_eval_run(store)
    train_id = build_training_run(store, tmp / "train-run", tiny_random_model_dir)
    return {"store": store, "eval": eval_id, "train": train_id, "tmp": tmp}


@pytest.fixture(scope="module")
def client(runs):
    from starlette.testclient import TestClient

    from selfimprove.view.app import create_app

    return TestClient(create_app(runs["store"]))


def _digest(path: Path) -> str:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    rows = [db.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("runs", "traces", "metrics")]
    db.close()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


# ---- server side -------------------------------------------------------------------------------------------

def test_every_page_kind_renders_and_the_store_is_read_only_and_unchanged(runs, client):
    before, mtime = _digest(runs["store"]), runs["store"].stat().st_mtime_ns
    e, t = runs["eval"], runs["train"]
    first = RunStore(runs["store"]).traces(e, "greedy")[0].example_id
    for url in ("/", "/?command=eval", f"/run/{e}", f"/run/{e}?scope=self-correct&cell=cw",
                f"/run/{e}?a=greedy&b=self-correct", f"/run/{e}/example?id={first}",
                f"/run/{e}/plot/accuracy-tokens.png", f"/run/{e}/plot/correction.png", f"/run/{t}",
                f"/run/{t}/traces", f"/run/{t}/arm/0/round/1", f"/run/{t}/arm/0/plot/accuracy.png",
                f"/run/{t}/arm/0/plot/guards.png"):
        assert client.get(url).status_code == 200, url
    with pytest.raises(sqlite3.OperationalError, match="readonly|read-only"):
        client.app.state.viewer.store.db.execute("DELETE FROM runs")
    assert _digest(runs["store"]) == before and runs["store"].stat().st_mtime_ns == mtime


def test_url_parameters_never_reach_the_file_system(runs, client):
    e, t = runs["eval"], runs["train"]
    secret = runs["tmp"] / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    bad = [f"/run/{e}/plot/..%2F..%2Fsecret.txt.png", f"/run/{e}/plot/%2E%2E.png", "/run/..%2Fsecret.txt",
           f"/run/{t}/arm/7/round/1", f"/run/{t}/arm/0/round/99", f"/run/{t}/arm/-1/round/1",
           f"/run/{t}/arm/0/round/..%2F..%2Fsecret.txt", f"/run/{t}/arm/0/plot/..%2Fsecret.png",
           f"/run/{e}?scope=..%2F..%2Fsecret.txt", f"/run/{e}?cell=../../secret.txt", "/static/../secret.txt",
           f"/run/{e}/example?id=../../secret.txt", f"/{secret}"]
    for url in bad:
        r = client.get(url)
        assert r.status_code == 404 and "TOP-SECRET" not in r.text, url
    r = client.get(f"/run/{t}/arm/0/round/1?data=../../secret.txt")  # only 'rows' switches the listing
    assert r.status_code == 200 and "TOP-SECRET" not in r.text


def test_model_text_is_escaped_and_credentials_are_not_shown(runs, client, tmp_path):
    e = runs["eval"]
    first = RunStore(runs["store"]).traces(e, "greedy")[0].example_id
    html = client.get(f"/run/{e}/example?id={first}").text
    assert "&lt;script&gt;window.__pwned" in html and PAYLOAD not in html
    store = RunStore(tmp_path / "runs.db")
    rid = store.create_run("eval", {"model": "openai:https://user:hunter2@example.com/v1",
                                    "api_key": "sk-abc123",
                                    "task": "arithmetic", "headers": {"Authorization": "Bearer tok-xyz"}})
    store.close()
    from starlette.testclient import TestClient

    from selfimprove.view.app import create_app

    page = TestClient(create_app(tmp_path / "runs.db")).get(f"/run/{rid}").text
    for secret in ("hunter2", "sk-abc123", "tok-xyz"):
        assert secret not in page
    assert "example.com" in page  # the rest of the config is shown


def test_correction_cells_and_light_traces_agree_with_the_metrics(runs):
    from collections import Counter

    from selfimprove.metrics.analysis import analysis
    from selfimprove.view.store import _SUMMARY, ViewStore, cell_of

    store, view = RunStore(runs["store"]), ViewStore(runs["store"])
    e = runs["eval"]
    assert view.indexed
    plan = view.db.execute(f"EXPLAIN QUERY PLAN SELECT example_id, {_SUMMARY} FROM traces WHERE run_id "
                           f"= ? AND scope = ? ORDER BY position", (e, "greedy")).fetchall()
    assert "traces_summary" in str(plan)  # read from the summary index, not by parsing every trace
    stored = store.metrics(e)
    for scope in ("greedy", "self-consistency:n=4,seed=1", "self-correct"):
        full = store.traces(e, scope)
        light = view.light(e, scope)
        assert [(t.example_id, t.correct, t.initial_answer, t.final_answer, t.confidence, t.status)
                for t in light.values()] == [(t.example_id, t.correct, t.initial_answer, t.final_answer,
                                              t.confidence, t.status) for t in full]
        assert stored[scope]["analysis"] == analysis(full) == analysis(list(light.values()))
        cells = Counter(cell_of(t) for t in light.values())
        assert {k: cells[k] for k in ("cc", "cw", "wc", "ww")} == correction_from_traces(
            full, unparsed_as_wrong=True)["transitions"]
        for cell, (before, after) in {"cw": (True, False), "wc": (False, True)}.items():
            ids, total = view.example_ids(e, scope, cell=cell)
            assert ids == [t.example_id for t in full if t.initial_correct is before and t.correct is after]
            assert total == len(ids)
    transitions = stored["self-correct"]["analysis"]["correction"]["transitions"]
    assert transitions["cw"] > 0 and transitions["wc"] > 0


def test_a_real_model_run_shows_the_prompt_the_model_received_and_its_tokens(tmp_path, tiny_random_model_dir):
    """An HF model with a chat template, through the runner: the example page shows the templated prompt (what
    the model read) beside the task's prompt, and each completion split into the tokens the model sampled."""
    from starlette.testclient import TestClient
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfimprove.backends.hf import HFBackend
    from selfimprove.runner import run_strategy
    from selfimprove.strategies import get_strategy
    from selfimprove.tasks.arithmetic import ArithmeticTask
    from selfimprove.view.app import create_app

    tok = AutoTokenizer.from_pretrained(tiny_random_model_dir)
    tok.chat_template = ("{% for m in messages %}q: {{ m['content'] }}\n"
                         "{% endfor %}{% if add_generation_prompt %}a:{% endif %}")
    backend = HFBackend.from_model(AutoModelForCausalLM.from_pretrained(tiny_random_model_dir), tok,
                                   chat=True)
    task = ArithmeticTask(n_test=2)
    store = RunStore(tmp_path / "runs.db")
    rid = store.create_run("eval", {"model": "tiny-random-chat", "task": task.describe(), "split": "test"})
    trace = run_strategy(backend, task, task.examples("test")[:1], get_strategy("greedy:max_tokens=6"), store,
                         rid)[0]
    store.close()
    step, completion = trace.steps[0], trace.steps[0].completions[0]
    assert step.info["sent_prompt"] == f"q: {step.prompt}\na:"
    assert len(completion.tokens) == len(completion.token_logprobs) == completion.completion_tokens
    page = TestClient(create_app(tmp_path / "runs.db")).get(f"/run/{rid}/example?id={trace.example_id}").text
    assert "prompt as the model received it (chat template applied" in page
    assert f'<pre class="prompt sent">q: {step.prompt}\na:</pre>' in page
    spans = page.split('<div class="completion">', 1)[1].split("</div>", 1)[0]
    assert spans.count("<span") == len(completion.tokens) and "logprob" in spans


def test_a_search_trace_shows_its_tree(tmp_path):
    """A trace whose step carries search nodes (beam, MCTS, DVTS record them as ``step.info['nodes']``) is
    drawn as a tree with each node's value, visits and step text (escaped), and the chosen leaf marked."""
    from starlette.testclient import TestClient

    from selfimprove.records import Step, Trace
    from selfimprove.view.app import create_app

    def node(i, parent, step, value, visits, terminal=False, answer=None):
        return {"id": i, "parent": parent, "depth": 0 if parent is None else 1, "step": step, "prefix": step,
                "value": value, "visits": visits, "value_sum": (value or 0) * visits, "tokens": len(step),
                "logprob": None, "terminal": terminal, "answer": answer, "info": {}}

    nodes = [node(0, None, "", None, 3), node(1, 0, "a=1 <b>", 0.9, 2), node(2, 1, " #5", 0.8, 1, True, "5"),
             node(3, 0, "a=2", 0.1, 1, True, None)]
    store = RunStore(tmp_path / "runs.db")
    rid = store.create_run("eval", {"model": "m", "task": "arithmetic", "split": "test"})
    store.add_traces(rid, "mcts", [Trace("arith-test-00000", "mcts", steps=(
        Step("tree", info={"nodes": nodes, "chosen": 2, "final": "value"}),), final_answer="5")], start=0)
    store.close()
    page = TestClient(create_app(tmp_path / "runs.db")).get(f"/run/{rid}/example?id=arith-test-00000").text
    assert "search tree</b> · 4 nodes · chosen #2" in page and page.count('data-node="') == 4
    assert '<li class="node chosen" data-node="2">' in page and "a=1 &lt;b&gt;" in page
    assert page.index('data-node="1"') < page.index('data-node="2"') < page.index('data-node="3"')  # nested
    assert "Q 0.900" in page  # node 1: value_sum / visits


def test_a_missing_store_is_a_user_error(tmp_path):
    from selfimprove.view.store import ViewStore

    with pytest.raises(UserError, match="no run store"):
        ViewStore(tmp_path / "nope.db")
    assert not (tmp_path / "nope.db").exists()


# ---- in a browser ------------------------------------------------------------------------------------------

def _chromium() -> str | None:
    for candidate in (os.environ.get("SELFIMPROVE_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        if candidate and (found := shutil.which(candidate)):
            return found
    return None


@pytest.fixture(scope="module")
def browser(runs):
    """A server on a free loopback port and a headless Chromium page."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (make install)")
    import uvicorn
    from playwright.sync_api import sync_playwright

    from selfimprove.view.app import create_app

    exe = _chromium()
    if exe is None:
        pytest.skip(
            "no Chromium binary (make browser, or apt-get install chromium, or set SELFIMPROVE_CHROMIUM)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(runs["store"]), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    shots = Path(os.environ.get("SELFIMPROVE_SCREENSHOTS") or runs["tmp"] / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as pw:
            chrome = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
            page = chrome.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)  # figures are drawn on request: slow on a loaded machine
            yield {"base": f"http://127.0.0.1:{port}", "page": page, "shots": shots, **runs}
            chrome.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_browser_runs_list_filters_and_opens_a_run(browser):
    page, base, e = browser["page"], browser["base"], browser["eval"]
    page.goto(base + "/")
    assert page.locator("#runs tr").count() == 3  # header + the eval run + the training run
    row = page.locator("#runs tr", has_text=e).inner_text()
    assert "eval" in row and "scripted-viewer-test" in row and "self-correct" in row
    page.screenshot(path=browser["shots"] / "runs.png", full_page=True)
    page.select_option("select[name=command]", "eval")
    page.click("text=filter")
    assert page.locator("#runs tr").count() == 2 and page.locator("#runs tr", has_text=e).count() == 1
    page.goto(base + "/?status=running")
    assert "no runs match" in page.locator("#runs").inner_text()
    page.goto(base + "/")
    page.click(f"a[href='/run/{e}']")
    assert page.locator("h1").inner_text() == f"selfimprove · run {e}"


def test_browser_correction_cell_to_examples_to_one_example(browser):
    page, base, e = browser["page"], browser["base"], browser["eval"]
    store = RunStore(browser["store"])
    traces = {t.example_id: t for t in store.traces(e, "self-correct")}
    page.goto(f"{base}/run/{e}")
    assert page.locator("table").first.locator("tr").count() == 5  # header + four strategies
    img = page.locator("img[alt='accuracy versus tokens']")
    img.scroll_into_view_if_needed()
    img.evaluate("img => img.decode()")
    assert img.evaluate("img => img.naturalWidth") > 100  # the figure arrived and is a real image
    page.screenshot(path=browser["shots"] / "eval-run.png", full_page=True)
    cell = page.locator("#correction-table tr", has_text="self-correct").locator("a[data-cell=cw]")
    want = [i for i, t in traces.items() if t.initial_correct is True and t.correct is False]
    assert int(cell.inner_text()) == len(want) > 0
    cell.click()
    listed = page.locator("#examples-table a.example").all_inner_texts()
    assert listed == want
    page.locator("#examples-table a.example").first.click()
    gold = next(x for x in get_task(store.get_run(e)["config"]["task"]).examples("test") if x.id == want[0])
    assert page.locator("h1").inner_text() == f"Example {want[0]}"
    assert page.locator("#gold").inner_text() == gold.answer
    cells = page.locator("#summary tr", has_text="self-correct").locator("td").all_inner_texts()
    assert traces[want[0]].initial_answer in cells[1] and "✓" in cells[1]
    assert traces[want[0]].final_answer in cells[2] and "✗" in cells[3]
    assert page.locator(".completion span").count() > 10  # tokens, each coloured by its log-probability
    page.screenshot(path=browser["shots"] / "example.png", full_page=True)
    nodes = next(s.info["nodes"] for s in store.traces(e, "beam")[0].steps if s.info.get("nodes"))
    page.goto(f"{base}/run/{e}/example?id={store.traces(e, 'beam')[0].example_id}")
    assert page.locator(".tree li.node").count() == len(nodes) > 1  # beam search's tree, every node
    page.locator(".tree").first.screenshot(path=browser["shots"] / "search-tree.png")


def test_browser_shows_a_script_in_a_completion_without_running_it(browser):
    page, base, e = browser["page"], browser["base"], browser["eval"]
    first = RunStore(browser["store"]).traces(e, "greedy")[0]
    page.goto(f"{base}/run/{e}/example?id={first.example_id}")
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert PAYLOAD in page.locator(".completion").first.inner_text()
    assert page.locator("script").count() == 0


def test_browser_paired_test_between_two_strategies_chosen_in_the_page(browser):
    page, base, e = browser["page"], browser["base"], browser["eval"]
    store = RunStore(browser["store"])
    expected = mcnemar_exact(*(outcomes(store.traces(e, s)) for s in ("greedy", "self-correct")))
    page.goto(f"{base}/run/{e}")
    page.select_option("select[name=a]", "greedy")
    page.select_option("select[name=b]", "self-correct")
    page.click("text=compare")
    result = page.locator("#paired-result").inner_text()
    assert "self-correct vs greedy" in result and f"{expected['p_value']:.4f}" in result
    assert f"{expected['b_only']}/{expected['a_only']}" in result
    page.locator("#paired-result").screenshot(path=browser["shots"] / "paired.png")


def test_browser_training_run_rounds_guards_and_kept_pairs(browser):
    page, base, t = browser["page"], browser["base"], browser["train"]
    page.goto(f"{base}/run/{t}")
    rounds = page.locator("table.rounds tr")
    assert rounds.count() == 3  # header + round 0 + round 1
    assert "dev" in rounds.first.inner_text()
    page.click("text=every guard value")
    assert page.locator("table.guards tr", has_text="judge_agreement.rate").count() == 1
    page.screenshot(path=browser["shots"] / "training.png", full_page=True)
    pairs = (browser["tmp"] / "train-run" / "round-1" / "pairs.jsonl").read_text().splitlines()
    link = rounds.nth(2).locator("td").nth(-4).locator("a")
    assert link.inner_text() == str(len(pairs))
    link.click()
    assert page.locator("#data-rows tr").count() == len(pairs) + 1
    assert "majority-vote" in page.locator("#data-rows").inner_text()
    page.screenshot(path=browser["shots"] / "round.png", full_page=True)
    page.goto(f"{base}/run/{t}")
    page.click("#traces-link")
    assert page.locator("#examples-table tr").count() > 1

