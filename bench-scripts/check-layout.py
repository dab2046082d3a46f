#!/usr/bin/env python3
"""Checks the shape of percore's source tree, so it stays easy to find one's way in:

- no import circle between top-level modules (a folder under src/, or a file directly in it):
  every `crate::<module>` a file names, outside comments, is an edge from its module;
- no `process::exit` outside src/main.rs (library code returns errors to main);
- no source file over 500 lines, apart from generated ones (an `@generated` header).

Prints the module graph; exits 1 with the reasons when a check fails. Run from anywhere:
    python3 bench-scripts/check-layout.py
"""

import pathlib
import re
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"
MAX_LINES = 500
USE = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
# `use crate::{a, b::c}` names several modules at once.
USE_GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)


def module_of(path):
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def code_of(text):
    """The text without // comments (doc comments name modules in prose)."""
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def main():
    edges = {}
    problems = []
    for path in sorted(SRC.rglob("*.rs")):
        text = path.read_text()
        module = module_of(path)
        edges.setdefault(module, set())
        code = code_of(text)
        named = set(USE.findall(code))
        for group in USE_GROUP.findall(code):
            named |= {item.strip().split("::")[0] for item in group.split(",") if item.strip()}
        edges[module] |= {m for m in named if m != module}
        lines = text.count("\n")
        if lines > MAX_LINES and "@generated" not in text[:400]:
            problems.append(f"{path.relative_to(SRC.parent)}: {lines} lines (over {MAX_LINES})")
        if "process::exit" in code and path != SRC / "main.rs":
            problems.append(f"{path.relative_to(SRC.parent)}: calls process::exit below main")
    for module in sorted(edges):
        print(f"{module:10} -> {', '.join(sorted(edges[module])) or '-'}")
    problems += cycles(edges)
    for problem in problems:
        print("FAIL:", problem)
    return 1 if problems else 0


def cycles(edges):
    """Every import circle, found by depth-first search, as a message each."""
    found = []
    state = {}

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                circle = path[path.index(nxt):] + [nxt]
                found.append("import circle: " + " -> ".join(circle))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


if __name__ == "__main__":
    sys.exit(main())
