"""List the large units of src/: modules over 500 lines and functions over 60.

    python bench/sizes.py [--modules N] [--functions N] [ROOT]

A function's length is from its `def` (decorators included) to its last line, as `ast`
sees it; a nested function counts inside its parent and on its own. Exit code 1 when
anything is over, so a check can run it; what is over on purpose is said in the
closing note of the change that left it, not here.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"


def _functions(tree: ast.AST, prefix: str = ""):
    """(qualified name, first line, length) of every function under `tree`."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            end = node.end_lineno or node.lineno
            yield f"{prefix}{node.name}", first, end - first + 1
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


def report(root: Path, module_limit: int, function_limit: int) -> list[str]:
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(root)
        lines = len(text.splitlines())
        if lines > module_limit:
            out.append(f"module   {lines:5d}  {name}")
        for qualname, first, length in _functions(ast.parse(text, str(path))):
            if length > function_limit:
                out.append(f"function {length:5d}  {name}:{first} {qualname}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=SRC)
    parser.add_argument("--modules", type=int, default=500, help="lines a module may have")
    parser.add_argument("--functions", type=int, default=60, help="lines a function may have")
    args = parser.parse_args(argv)
    over = report(args.root, args.modules, args.functions)
    for line in over:
        print(line)
    if not over:
        print(f"nothing over {args.modules} lines a module or {args.functions} a function")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
