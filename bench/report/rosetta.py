"""The Rosetta view: what writing the same model and training step costs in each framework, from the adapters'
own source, read as text with `ast` (the report never imports a framework).

For a task, an adapter's excerpt is its class's `build`, `train_epoch` (where it has its own), `train_step` and
`predict`, every method of the class they reach through `self.`, and every module-level function, class or
constant they use, followed transitively.
A module-level dict keyed by task names (the `MODELS` table) leads only to the entry of the task shown.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from bench.registry import FRAMEWORKS, SOURCE_ROOT

ENTRY_METHODS = ("build", "train_epoch", "train_step", "predict")


@dataclass(frozen=True)
class Excerpt:
    title: str  # the frameworks sharing this adapter
    path: str  # relative to the source root
    code: str
    lines_of_code: int  # without blank, comment-only and docstring lines


def adapter_path(module: str) -> Path:
    return SOURCE_ROOT / (module.replace(".", "/") + ".py")


def excerpts(frameworks: list[str], task: str) -> list[Excerpt]:
    """One excerpt per adapter module used by FRAMEWORKS (Keras's three backends share one), in registry order."""
    by_adapter: dict[str, list[str]] = {}
    for name, framework in FRAMEWORKS.items():
        if name in frameworks:
            by_adapter.setdefault(framework.adapter, []).append(name)
    found = []
    for adapter, names in by_adapter.items():
        module, class_name = adapter.split(":")
        path = adapter_path(module)
        if path.is_file():
            code, count = extract(path.read_text(), class_name, task)
            found.append(Excerpt(", ".join(names), str(path.relative_to(SOURCE_ROOT)), code, count))
    return found


def extract(source: str, class_name: str, task: str) -> tuple[str, int]:
    """The excerpt of CLASS_NAME for TASK from one module's SOURCE, and its lines of code."""
    tree = ast.parse(source)
    top = {name: node for node in tree.body for name in _defined_names(node)}
    adapter = top[class_name]
    methods = {node.name: node for node in adapter.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    chosen_methods, chosen_top = [], []
    pending = [methods[name] for name in ENTRY_METHODS if name in methods]
    while pending:
        node = pending.pop()
        if node in chosen_methods or node in chosen_top:
            continue
        (chosen_methods if node in methods.values() else chosen_top).append(node)
        for name in _used_names(node, task):
            if name in top and top[name] is not adapter:
                pending.append(top[name])
        pending += [methods[name] for name in _self_attributes(node) if name in methods]
    lines = source.splitlines()
    blocks = [_segment(lines, node) for node in sorted(chosen_top, key=lambda n: n.lineno)]
    header = lines[adapter.lineno - 1]
    body = "\n\n".join(_segment(lines, node) for node in sorted(chosen_methods, key=lambda n: n.lineno))
    blocks.append(f"{header}\n{body}")
    code = "\n\n".join(blocks)
    skipped = _docstring_lines(chosen_top + chosen_methods)
    count = sum(1 for node in chosen_top + chosen_methods
                for number in range(_first_line(node), node.end_lineno + 1)
                if number not in skipped and lines[number - 1].strip()
                and not lines[number - 1].strip().startswith("#")) + 1  # + the class line
    return code, count


def _defined_names(node: ast.stmt) -> list[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, ast.Assign):
        return [target.id for target in node.targets if isinstance(target, ast.Name)]
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return [node.target.id]
    return []


def _used_names(node: ast.AST, task: str) -> set[str]:
    """Names NODE reads; a dict keyed by task names contributes only TASK's entry."""
    if isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict):
        keys = [key.value for key in node.value.keys if isinstance(key, ast.Constant)]
        if task in keys:
            node = node.value.values[keys.index(task)]
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name) and isinstance(child.ctx, ast.Load)}


def _self_attributes(node: ast.AST) -> set[str]:
    return {child.attr for child in ast.walk(node) if isinstance(child, ast.Attribute)
            and isinstance(child.value, ast.Name) and child.value.id == "self"}


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno, *(decorator.lineno for decorator in decorators)])


def _segment(lines: list[str], node: ast.AST) -> str:
    return "\n".join(lines[_first_line(node) - 1:node.end_lineno])


def _docstring_lines(nodes: list[ast.AST]) -> set[int]:
    found = set()
    for node in nodes:
        for child in ast.walk(node):
            body = getattr(child, "body", None)
            if (isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                    and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                found.update(range(body[0].lineno, body[0].end_lineno + 1))
    return found
