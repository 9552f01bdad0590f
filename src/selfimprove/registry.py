"""One registry for everything the command line selects by name: models, tasks, strategies, verifiers and
training methods.

    from selfimprove.registry import register_strategy

    @register_strategy("my-vote")
    @dataclass(frozen=True)
    class MyVote:
        '''One line that `selfimprove ls strategies` prints.'''
        n: int = 8
        '''Samples per example.'''
        ...

after which ``--strategy my-vote:n=4`` works everywhere a strategy name does. A package outside the project
registers through a Python entry point in the group ``selfimprove.<kind>`` (as simonw/llm plugins do), e.g. in
its ``pyproject.toml``::

    [project.entry-points."selfimprove.strategies"]
    my-vote = "my_package.vote:MyVote"

The entry point's name is the registered name and its value the object; an entry point that names a module is
imported for its ``register_*`` calls instead. Built-ins register themselves in their own packages
(``selfimprove.strategies``, ``selfimprove.tasks``, ...), which the registry imports on the first lookup of
their kind, so naming a strategy never imports torch.

What each kind's object is and how a spec builds it:

- ``models``: a factory ``(arg: str, **backend_kwargs) -> Backend``; ``--model NAME`` or ``NAME:ARG`` calls
  it with the text after the colon. A spec that names no registered model is a path or hub id (``hf``).
- ``tasks``: a class with ``from_options(options, data=None)`` (or a dataclass built from the options).
- ``strategies``: a frozen dataclass whose fields are its options (``name:key=value,...``).
- ``verifiers``: a class built as ``cls(backend=..., task=..., **options)`` (see ``verifiers.base``).
- ``methods``: a training method (see ``selfimprove.training``).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import inspect
import itertools
import typing
from dataclasses import dataclass
from typing import Any

from .errors import UserError
from .specs import convert_option, parse_spec

KINDS: dict[str, str] = {
    "models": "selfimprove.backends",
    "tasks": "selfimprove.tasks",
    "strategies": "selfimprove.strategies",
    "verifiers": "selfimprove.verifiers",
    "methods": "selfimprove.training.methods",
}
"""Each kind and the package whose import registers its built-ins."""
ENTRY_POINT_GROUP = "selfimprove.{kind}"
"""Entry-point group of a kind, e.g. ``selfimprove.strategies``."""
SINGULAR = {"models": "model", "tasks": "task", "strategies": "strategy", "verifiers": "verifier",
            "methods": "method"}


@dataclass(frozen=True)
class Option:
    """One setting of a registered object, as ``ls`` prints it and a spec sets it."""

    name: str
    type: Any = str
    """The Python type (a string annotation is resolved where it can be)."""
    default: Any = None
    doc: str = ""


@dataclass(frozen=True)
class Entry:
    """One registered name."""

    kind: str
    name: str
    target: Any
    """The object, or ``'module:attribute'`` imported on first use."""
    description: str = ""
    """One line; the target's docstring's first line when not given."""
    options: tuple[Option, ...] | None = None
    """Explicit options; read from the target's fields or signature when None."""
    aliases_of: str | None = None
    """The name this entry is another name for."""
    paper: str = ""
    """The method's paper as 'Title, arXiv:ID' (empty for baselines and controls)."""

    def load(self) -> Any:
        if isinstance(self.target, str) and ":" in self.target:
            module, _, attr = self.target.partition(":")
            return getattr(importlib.import_module(module), attr)
        return self.target

    def summary(self) -> str:
        if self.description:
            return self.description
        obj = self.load()
        own = obj.__dict__.get("__doc__") if isinstance(obj, type) else getattr(obj, "__doc__", None)
        doc = inspect.cleandoc(own or "")  # a class's own docstring, never one inherited from its base
        return " ".join(doc.split("\n\n")[0].split()) if doc else ""

    @property
    def builtin(self) -> bool:
        """Whether the entry comes with selfimprove (not a plugin or a registration made at run time)."""
        if isinstance(self.target, str):  # 'module:attr', or a bare name registered by selfimprove itself
            return ":" not in self.target or self.target.startswith("selfimprove.")
        return (getattr(self.target, "__module__", None) or "").startswith("selfimprove.")

    def settings(self) -> tuple[Option, ...]:
        return self.options if self.options is not None else options_of(self.load())


_REGISTRY: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
_LOADED: set[str] = set()


def register(kind: str, name: str, target: Any = None, *, description: str = "",
             options: typing.Sequence[Option] | None = None, alias_of: str | None = None, paper: str = "",
             replace: bool = True):
    """Register ``target`` as ``name`` of ``kind``; without ``target``, a decorator that registers what it
    decorates and returns it unchanged. ``paper`` cites the method ('Title, arXiv:ID'). A later registration
    of the same name replaces the earlier one (``replace=False`` refuses instead)."""
    if kind not in KINDS:
        raise ValueError(f"unknown registry kind {kind!r}; known: {', '.join(KINDS)}")

    def add(obj):
        if not replace and name in _REGISTRY[kind]:
            raise ValueError(f"{SINGULAR[kind]} {name!r} is already registered")
        _REGISTRY[kind][name] = Entry(kind, name, obj, description,
                                      None if options is None else tuple(options), alias_of, paper)
        return obj

    return add if target is None else add(target)


def unregister(kind: str, name: str) -> None:
    """Remove ``name`` of ``kind`` (a test's own registration, when it is done)."""
    _load_kind(kind)
    _REGISTRY[kind].pop(name, None)


def register_model(name, factory=None, **kw):
    """Register a backend factory ``(arg, **backend_kwargs) -> Backend`` as ``--model name[:arg]``."""
    return register("models", name, factory, **kw)


def register_task(name, cls=None, **kw):
    """Register a task class (``from_options(options, data=None)`` or a dataclass) as ``--task name``."""
    return register("tasks", name, cls, **kw)


def register_strategy(name, cls=None, **kw):
    """Register a strategy dataclass as ``--strategy name``."""
    return register("strategies", name, cls, **kw)


def register_verifier(name, cls=None, **kw):
    """Register a verifier class ``cls(backend, task, **options)`` as verifier ``name``."""
    return register("verifiers", name, cls, **kw)


def register_method(name, method=None, **kw):
    """Register a training method as ``--method name``."""
    return register("methods", name, method, **kw)


def _load_kind(kind: str) -> None:
    if kind in _LOADED:
        return
    _LOADED.add(kind)
    importlib.import_module(KINDS[kind])
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP.format(kind=kind)):
        try:
            obj = ep.load()
        except Exception as e:  # noqa: BLE001 — a broken plugin must not break the built-ins
            import warnings

            warnings.warn(f"selfimprove: plugin entry point {ep.name!r} ({ep.value}) failed to load: {e}",
                          stacklevel=2)
            continue
        if not inspect.ismodule(obj):  # a module registers what it defines when imported
            register(kind, ep.name, obj)


def entries(kind: str) -> list[Entry]:
    """Every entry of ``kind``, sorted by name."""
    _load_kind(kind)
    return sorted(_REGISTRY[kind].values(), key=lambda e: e.name)


def names(kind: str) -> list[str]:
    return [e.name for e in entries(kind)]


def find(kind: str, name: str) -> Entry | None:
    _load_kind(kind)
    return _REGISTRY[kind].get(name)


def get(kind: str, name: str) -> Entry:
    """The entry ``name`` of ``kind``; a UserError listing the known names when there is none."""
    entry = find(kind, name)
    if entry is None:
        raise UserError(f"unknown {SINGULAR[kind]} '{name}'; known: {', '.join(names(kind))} "
                        f"(see `selfimprove ls {kind}`)")
    return entry


# ---- building objects from specs ---------------------------------------------------------------------------

def build(target, options: dict[str, str], what: str, *fixed_args, **fixed):
    """Call ``target(*fixed_args, **fixed, **converted_options)``, converting each string option to the type
    of its field or parameter; unknown options and rejected values become a UserError naming ``what``."""
    known = {o.name: o for o in options_of(target)}
    kwargs = dict(fixed)
    for key, raw in options.items():
        if key not in known:
            raise UserError(f"unknown {what} option '{key}'; known: {', '.join(sorted(known)) or 'none'}")
        kwargs[key] = convert_option(raw, known[key].type, f"{what} option '{key}'")
    try:
        return target(*fixed_args, **kwargs)
    except (TypeError, ValueError) as e:
        raise UserError(f"{what}: {e}") from None


def build_strategy(spec: str):
    """A strategy from ``name[:key=value,...]``, e.g. ``self-consistency:n=16,temperature=0.7``."""
    name, options = parse_spec(spec, "strategy")
    return build(get("strategies", name).load(), options, f"strategy '{name}'")


def build_task(spec: str, data: str | None = None):
    """A task from ``name[:key=value,...]``; ``data`` is the path of a file-backed task."""
    name, options = parse_spec(spec, "task")
    cls = get("tasks", name).load()
    if hasattr(cls, "from_options"):
        return cls.from_options(options, data=data)
    fields = {o.name for o in options_of(cls)}
    if data is not None and "data" not in fields:
        raise UserError(f"task '{name}' takes no --data")
    return build(cls, options, f"task '{name}'", **({"data": data} if "data" in fields else {}))


def build_backend(spec: str, **kwargs):
    """A backend from a ``--model`` spec: ``NAME[:ARG]`` for a registered model, else a local Hugging Face
    model directory or hub id."""
    name, _, arg = spec.partition(":")
    entry = find("models", name)
    if entry is None:
        entry, arg = get("models", "hf"), spec
    return entry.load()(arg, **kwargs)


def build_verifier(spec: str, backend, task):
    """A verifier from ``name[:key=value,...]`` for ``backend`` and ``task``."""
    name, options = parse_spec(spec, "verifier")
    return build(get("verifiers", name).load(), options, f"verifier '{name}'", backend=backend, task=task)


# ---- options of a target: dataclass fields or signature parameters ----------------------------------------

_FIXED = {"self", "backend", "task", "data", "arg", "cls", "kwargs", "args"}


def options_of(target) -> tuple[Option, ...]:
    """A target's settings: a dataclass's init fields with their attribute docstrings, else the keyword
    parameters of its ``__init__`` or signature (the fixed ones, backend, task, data, excluded)."""
    if isinstance(target, type) and dataclasses.is_dataclass(target):
        docs = field_docs(target)
        try:
            hints = typing.get_type_hints(target)
        except Exception:  # noqa: BLE001 — an unresolvable annotation: keep the string
            hints = {}
        out = []
        for f in dataclasses.fields(target):
            if not f.init or f.name.startswith("_"):
                continue
            default = (f.default if f.default is not dataclasses.MISSING else
                       f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            out.append(Option(f.name, hints.get(f.name, f.type), default, docs.get(f.name, "")))
        return tuple(out)
    fn = target.__init__ if isinstance(target, type) else target
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn)
    except (TypeError, ValueError, NameError):
        return ()
    return tuple(Option(p.name, hints.get(p.name, str), None if p.default is p.empty else p.default)
                 for p in sig.parameters.values()
                 if p.name not in _FIXED and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))


def field_docs(cls) -> dict[str, str]:
    """The attribute docstrings (a string literal right after a field) of ``cls`` and its bases, joined into
    one line each."""
    return dict(_field_docs(cls))


@functools.cache
def _field_docs(cls) -> dict[str, str]:
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__[:-1]):
        docs.update(_class_docs(klass.__module__).get(klass.__qualname__, {}))
    return docs


@functools.cache
def _class_docs(module: str) -> dict[str, dict[str, str]]:
    """``{class qualname: {field: docstring}}`` of every class in a module, from ONE parse of its source
    (``inspect.getsource`` of each class re-parses the whole module: ~2 s per CLI parser)."""
    import sys

    try:
        tree = ast.parse(inspect.getsource(sys.modules[module]))
    except (KeyError, OSError, TypeError, SyntaxError):
        return {}
    out: dict[str, dict[str, str]] = {}

    def visit(body, prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef):
                name = f"{prefix}{node.name}"
                out[name] = {a.target.id: " ".join(b.value.value.split())
                             for a, b in itertools.pairwise(node.body)
                             if isinstance(a, ast.AnnAssign) and isinstance(a.target, ast.Name)
                             and isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant)
                             and isinstance(b.value.value, str)}
                visit(node.body, f"{name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                visit(node.body, f"{prefix}{node.name}.<locals>.")

    visit(tree.body, "")
    return out


def type_name(hint) -> str:
    """A short readable name of a type hint (``int``, ``float | None``, ``tuple[str, ...]``)."""
    if isinstance(hint, type):
        return hint.__name__
    return str(hint).replace("typing.", "")


def describe_default(value) -> str:
    if isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
        return "|".join(value)
    return repr(value) if isinstance(value, str) else str(value)

