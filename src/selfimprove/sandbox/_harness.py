"""The two programs that run inside a sandboxed job (stdlib only).

* ``candidate_main`` runs the untrusted candidate code. In script mode it is simply the program; in test mode
  it then serves calls to its top-level callables, one framed request at a time, answering with plain data.
* ``tests_main`` runs the test code in a *different* process (a different uid, never forked after the
  candidate saw anything): it calls the candidate through proxies that decode replies into builtin values,
  runs each test and writes one outcome frame per test to a pipe only the job's init process reads.

The candidate never holds the tests (they are read from the parent only after the candidate was forked) and
cannot reach the outcome pipe, so nothing it prints, exits with, raises or monkeypatches can become a pass.
"""

from __future__ import annotations

import ast
import builtins
import operator
import sys
import traceback

from _codec import ProtocolError, decode, encode, read_frame, write_frame

_MAX_REPR = 300


def _short(value) -> str:
    try:
        text = repr(value)
    except BaseException:  # noqa: BLE001 — a hostile __repr__ is still just a failure message
        text = f"<unprintable {type(value).__name__}>"
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


# ----------------------------------------------------------------------------------------------- candidate

def candidate_main(code: str, path: str, call_fd: int | None, ret_fd: int | None) -> int:
    """Run the candidate; serve calls when the fds are given. Returns the process exit status."""
    with open(path, "w", encoding="utf-8") as f:  # tracebacks then show the candidate's own lines
        f.write(code)
    serving = call_fd is not None
    g = {"__name__": "__main__" if not serving else "solution", "__file__": path, "__builtins__": builtins}
    load_error = None
    try:
        exec(compile(code, path, "exec"), g)  # noqa: S102 — running the candidate is this process's job
    except SystemExit as e:
        if not serving:
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        load_error = f"SystemExit({e.code!r}) while loading the candidate"
    # the candidate's own frames only: the harness frame is not its business
    except BaseException as e:  # noqa: BLE001
        text = "".join(traceback.format_exception(type(e), e, e.__traceback__.tb_next))
        sys.stderr.write(text)
        load_error = text[-2000:]
        if not serving:
            return 1
    if not serving:
        sys.stdout.flush()
        return 0
    names = [k for k, v in list(g.items()) if not k.startswith("__") and callable(v)]
    write_frame(ret_fd, {"names": names, "error": load_error})
    while True:
        try:
            msg = read_frame(call_fd)
        except EOFError:
            return 0
        try:
            fn = g[msg["call"]]
            result = fn(*decode(msg["args"]), **decode(msg["kwargs"]))
            reply = {"ok": encode(result)}
        except BaseException as e:  # noqa: BLE001 — SystemExit included: it is an error reply, never a pass
            reply = {"exc": [type(e).__name__, _short(e.args[0] if len(e.args) == 1 else e.args)]}
        sys.stdout.flush()
        write_frame(ret_fd, reply)


# ----------------------------------------------------------------------------------------------- tests

class CandidateGone(Exception):
    """The candidate process closed its channel (it exited, crashed or was killed)."""


class _Proxy:
    """Stands in for one of the candidate's callables inside the test process."""

    def __init__(self, name: str, call_fd: int, ret_fd: int) -> None:
        self._name, self._call_fd, self._ret_fd = name, call_fd, ret_fd

    def __call__(self, *args, **kwargs):
        try:
            write_frame(self._call_fd, {"call": self._name, "args": encode(args), "kwargs": encode(kwargs)})
            reply = read_frame(self._ret_fd)
        except (EOFError, BrokenPipeError, OSError) as e:
            raise CandidateGone(f"the candidate process is gone ({type(e).__name__})") from None
        if type(reply) is not dict:
            raise ProtocolError("malformed reply")
        if "ok" in reply:
            return decode(reply["ok"])
        exc = reply.get("exc")
        if type(exc) is not list or len(exc) != 2 or not all(type(x) is str for x in exc):
            raise ProtocolError("malformed reply")
        cls = getattr(builtins, exc[0], None)
        if not (isinstance(cls, type) and issubclass(cls, Exception)):
            cls = RuntimeError
        raise cls(f"{exc[0]} in {self._name}: {exc[1]}")

    def __repr__(self) -> str:
        return f"<candidate function {self._name}>"


_OPS = {ast.Eq: ("==", operator.eq), ast.NotEq: ("!=", operator.ne), ast.Lt: ("<", operator.lt),
        ast.LtE: ("<=", operator.le), ast.Gt: (">", operator.gt), ast.GtE: (">=", operator.ge),
        ast.Is: ("is", operator.is_), ast.IsNot: ("is not", operator.is_not),
        ast.In: ("in", lambda a, b: a in b), ast.NotIn: ("not in", lambda a, b: a not in b)}


def _si_cmp(left, op: str, right, src: str, msg) -> None:
    fn = next(f for sym, f in _OPS.values() if sym == op)
    if not fn(left, right):
        extra = f" ({msg()})" if msg is not None else ""
        raise AssertionError(f"assert {src} failed: left side = {_short(left)}, right side = {_short(right)}"
                             + extra)


def _si_assert(value, src: str, msg) -> None:
    if not value:
        extra = f" ({msg()})" if msg is not None else ""
        raise AssertionError(f"assert {src} failed{extra}")


class _AssertRewriter(ast.NodeTransformer):
    """``assert a == b`` becomes a call that reports both sides when it fails (for feedback to the model)."""

    def visit_Assert(self, node: ast.Assert):
        msg = ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[],
                                            defaults=[]), body=node.msg) if node.msg else ast.Constant(None)
        src = ast.Constant(ast.unparse(node.test)[:_MAX_REPR])
        test = node.test
        if isinstance(test, ast.Compare) and len(test.ops) == 1 and type(test.ops[0]) in _OPS:
            call = ast.Call(ast.Name("__si_cmp", ast.Load()),
                            [test.left, ast.Constant(_OPS[type(test.ops[0])][0]), test.comparators[0], src,
                             msg],
                            [])
        else:
            call = ast.Call(ast.Name("__si_assert", ast.Load()), [test, src, msg], [])
        return ast.copy_location(ast.Expr(call), node)


def _compile_test(source: str, name: str):
    tree = _AssertRewriter().visit(ast.parse(source, name))
    return compile(ast.fix_missing_locations(tree), name, "exec")


def _describe(e: BaseException) -> str:
    if isinstance(e, AssertionError) and e.args:
        return str(e.args[0])[:1000]
    return f"{type(e).__name__}: {_short(e.args[0] if len(e.args) == 1 else e.args)}"[:1000]


def tests_main(setup: str, tests: list[str], call_fd: int, ret_fd: int, out_fd: int) -> int:
    """Run ``setup`` then each test against the candidate's proxies; one outcome frame per test."""
    def report(i: int, error: str | None) -> None:
        write_frame(out_fd, {"i": i, "ok": error is None, "error": error})

    try:
        hello = read_frame(ret_fd)
        names, load_error = hello["names"], hello["error"]
        if type(names) is not list or not all(type(n) is str for n in names):
            raise ProtocolError("malformed hello")
    except (EOFError, ProtocolError, KeyError, TypeError) as e:
        for i in range(len(tests)):
            report(i, f"the candidate did not start ({type(e).__name__})")
        return 0
    if load_error is not None:
        for i in range(len(tests)):
            report(i, f"the candidate failed to load: {str(load_error)[-1000:]}")
        return 0
    g = {"__name__": "__test__", "__builtins__": builtins, "__si_cmp": _si_cmp, "__si_assert": _si_assert}
    g.update({n: _Proxy(n, call_fd, ret_fd) for n in names})
    try:
        exec(_compile_test(setup, "<tests setup>"), g)  # noqa: S102 — the tests are this process's job
    except BaseException as e:  # noqa: BLE001
        for i in range(len(tests)):
            report(i, f"test setup failed: {_describe(e)}")
        return 0
    for i, test in enumerate(tests):
        try:
            exec(_compile_test(test, f"<test {i}>"), g)  # noqa: S102
        except BaseException as e:  # noqa: BLE001 — SystemExit from a test is a failure of that test
            report(i, _describe(e))
        else:
            report(i, None)
    return 0
