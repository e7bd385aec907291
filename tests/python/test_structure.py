"""The layering the design promises, checked on the source: the http layer knows no
S3, the lower layers know neither, and the files of src/s3 import each other without
a circle (handlers depend on the request context, never the other way)."""

import os
import re

from conftest import ROOT

SRC = os.path.join(ROOT, "src")
# `crate::a::b` paths, also inside `use crate::{a, b::c}` groups and `crate::s3::{x, y}`.
PATH = re.compile(r"crate::((?:[a-z0-9_]+::)*(?:[a-z0-9_]+|\{[^}]*\}))")


def module_of(path):
    rel = os.path.relpath(path, SRC)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    return "::".join(rel)


def imports(path):
    """Every `crate::...` module path a file names, braces expanded one level."""
    text = open(path).read()
    found = set()
    for match in PATH.finditer(text):
        full = match.group(1)
        if "{" in full:
            head, group = full.split("{", 1)
            for item in group.rstrip("}").split(","):
                item = item.strip().split(" as ")[0]
                if item and item != "self":
                    found.add(head + item)
                elif item == "self":
                    found.add(head.rstrip(":"))
        else:
            found.add(full)
    return found


def sources():
    for directory, _, files in os.walk(SRC):
        for name in files:
            if name.endswith(".rs"):
                yield os.path.join(directory, name)


def test_http_and_the_lower_layers_know_no_s3():
    for path in sources():
        module = module_of(path)
        top = module.split("::")[0]
        if top not in ("http", "auth", "meta", "storage", "ops", "checksum", "clock", "limits", "error"):
            continue
        named = {i for i in imports(path) if i.startswith("s3")}
        assert not named, f"{module} imports {named}"
        if top in ("auth", "meta", "storage"):
            assert not {i for i in imports(path) if i.startswith("http")}, f"{module} imports http"


def test_no_import_circle_in_s3():
    graph = {}
    for path in sources():
        module = module_of(path)
        if not module.startswith("s3::"):
            continue
        deps = set()
        for item in imports(path):
            parts = item.split("::")
            if parts[0] == "s3" and len(parts) > 1:
                deps.add("s3::" + parts[1])
        deps.discard(module)
        graph[module] = deps
    assert "s3::service" in graph and "s3::context" in graph
    # Handlers depend on the context; the context and the stages depend on no handler.
    for lower in ("s3::context", "s3::store", "s3::operation", "s3::authorize", "s3::authenticate"):
        assert not graph[lower] & {"s3::object", "s3::bucket", "s3::copy", "s3::multipart", "s3::list",
                                   "s3::service"}, (lower, graph[lower])

    visiting, done = [], set()

    def visit(node):
        if node in done:
            return
        assert node not in visiting, "import circle: " + " -> ".join(visiting[visiting.index(node):] + [node])
        visiting.append(node)
        for dep in graph.get(node, ()):
            visit(dep)
        visiting.pop()
        done.add(node)

    for node in sorted(graph):
        visit(node)
