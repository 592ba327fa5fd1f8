#!/usr/bin/env python3
"""Checks the gateway's module layering: no import circle, and no import upwards.

Reads every `.rs` file under gateway/src (test modules left out), collects the crate paths each
one uses (`use crate::…`, `use super::…`, `use child::…`, and inline `crate::a::b` paths), maps
them to modules, and fails when
  - modules import each other in a circle (a parent's `pub use` of a child counts),
  - a module imports one of its ancestors (a child reaching back into its parent's `mod.rs`),
  - a top-level module imports one listed above it in LAYERS.
Run with -v to print the graph.
"""
import os
import re
import sys

# Top-level modules from the bottom up: each may import only those before it.
LAYERS = [
    "config",
    "state",
    "tenants",
    "connections",
    "pipeline",
    "http",
    "dashboard",
    "server",
    "app",
    "sandbox",
    "cli",
]

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "gateway", "src")


def modules(root):
    found = {}
    for directory, _, files in os.walk(root):
        for name in files:
            if not name.endswith(".rs"):
                continue
            path = os.path.join(directory, name)
            parts = os.path.relpath(path, root)[:-3].split(os.sep)
            if parts[-1] == "mod":
                parts = parts[:-1]
            if parts in (["lib"], ["main"]):
                parts = []
            if parts and parts[-1] == "tests":
                continue  # a test module in a file of its own
            found[tuple(parts)] = path
    return found


TEST_MODULE = re.compile(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{")


def without_tests(source):
    match = TEST_MODULE.search(source)
    while match:
        end, depth = match.end(), 1
        while depth and end < len(source):
            depth += {"{": 1, "}": -1}.get(source[end], 0)
            end += 1
        source = source[: match.start()] + source[end:]
        match = TEST_MODULE.search(source)
    return source


def split_top(text):
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += {"{": 1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return parts + [current]


def expand(prefix, tree):
    """`a::{b, c::{d}}` → [[a, b], [a, c, d]]."""
    paths = []
    for part in split_top(tree):
        part = " ".join(part.split())
        if not part:
            continue
        group = re.match(r"^(.*?)::\{(.*)\}$", part, re.S)
        if group:
            paths += expand(prefix + group.group(1).split("::"), group.group(2))
        elif part.startswith("{") and part.endswith("}"):
            paths += expand(prefix, part[1:-1])
        else:
            paths.append(prefix + part.split(" as ")[0].strip().split("::"))
    return paths


def resolve(known, module, path):
    """The module a path names, or None for paths outside the crate."""
    head = path[0]
    if head == "crate":
        base, rest = [], path[1:]
    elif head in ("super", "self"):
        base, rest = list(module), path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif module + (head,) in known:
        base, rest = list(module), path
    else:
        return None
    full = base + rest
    for n in range(len(full), -1, -1):
        if tuple(full[:n]) in known:
            return tuple(full[:n])
    return None


def graph(known):
    edges = {}
    for module, path in known.items():
        with open(path, encoding="utf-8") as file:
            source = re.sub(r"//[^\n]*", "", without_tests(file.read()))
        paths = []
        for use in re.finditer(r"\buse\s+([^;]*);", source, re.S):
            paths += expand([], use.group(1))
        for inline in re.finditer(r"(?<![\w:])(\w+)((?:::\w+)+)", source):
            paths.append([inline.group(1)] + inline.group(2).split("::")[1:])
        for target in filter(None, (resolve(known, module, p) for p in paths if p)):
            if target != module and target != ():
                edges.setdefault(module, set()).add(target)
    return edges


def circles(nodes, edges):
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in edges.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                other = stack.pop()
                on_stack.discard(other)
                component.append(other)
                if other == node:
                    break
            if len(component) > 1:
                found.append(component)

    sys.setrecursionlimit(10_000)
    for node in nodes:
        if node not in index:
            visit(node)
    return found


def name(module):
    return "::".join(module) or "crate"


def main():
    known = modules(ROOT)
    edges = graph(known)
    problems = []
    for component in circles(known, edges):
        problems.append("import circle: " + ", ".join(sorted(map(name, component))))
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            if len(target) < len(source) and source[: len(target)] == target:
                problems.append(f"{name(source)} imports its ancestor {name(target)}")
            elif source and target and source[0] != target[0]:
                for top in (source[0], target[0]):
                    if top not in LAYERS:
                        problems.append(f"{top} is not placed in LAYERS")
                if {source[0], target[0]} <= set(LAYERS) and (
                    LAYERS.index(source[0]) < LAYERS.index(target[0])
                ):
                    problems.append(f"{name(source)} imports {name(target)}, a higher layer")
    if "-v" in sys.argv:
        for source in sorted(edges):
            print(f"{name(source)} -> {', '.join(sorted(map(name, edges[source])))}")
    count = sum(map(len, edges.values()))
    for problem in sorted(set(problems)):
        print(problem)
    print(f"layers: {len(known)} modules, {count} imports, {len(set(problems))} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
