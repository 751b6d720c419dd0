"""The layer rules of docs/design.md section 2, checked on the source with ``ast``.

- ``badkv/consensus/`` imports only the standard library and itself;
- ``badkv/records.py``, ``badkv/store.py``, ``badkv/key_table.py`` and ``badkv/storage/`` import neither the web
  stack (flask, werkzeug, requests, urllib3) nor ``badkv.http`` / ``badkv.cluster``;
- ``badkv/http/`` never imports ``badkv.consensus`` or ``badkv.storage``: it calls the Node;
- no module reads another object's ``_private`` attribute (``x._name`` where ``x`` is not
  ``self``, ``cls`` or ``super()``, nor a module the file imports, such as ``os._exit``).

A failure names the file, the line and the import or attribute.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "badkv"
WEB_STACK = ("flask", "werkzeug", "requests", "urllib3")
NAMEDTUPLE_API = {"_replace", "_asdict", "_fields", "_make"}


def modules(under: str = "") -> list[Path]:
    root = PACKAGE / under if under else PACKAGE
    return sorted(root.rglob("*.py")) if root.is_dir() else [root]


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module name) of every import in ``path``, relative imports made absolute."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts[:-1])
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if base == "badkv"]
    return found


def violations(paths: list[Path], allowed) -> list[str]:
    return [f"{path.relative_to(PACKAGE.parent)}:{line} imports {name}"
            for path in paths for line, name in imports_of(path) if not allowed(name)]


def is_stdlib(name: str) -> bool:
    return name.split(".")[0] in sys.stdlib_module_names or name == "__future__"


def test_consensus_imports_only_the_standard_library_and_itself():
    assert violations(modules("consensus"),
                      lambda name: is_stdlib(name) or name.startswith("badkv.consensus")) == []


@pytest.mark.parametrize("under", ["records.py", "store.py", "key_table.py", "storage"])
def test_store_and_storage_import_no_web_stack_and_no_upper_layer(under):
    def allowed(name):
        top = name.split(".")[0]
        return top not in WEB_STACK and not name.startswith(("badkv.http", "badkv.cluster"))
    assert violations(modules(under), allowed) == []


def test_http_calls_the_node_and_never_the_core_or_the_disk():
    assert violations(modules("http"), lambda name: not name.startswith(("badkv.consensus", "badkv.storage"))) == []


def test_errors_and_config_are_free_of_the_web_framework():
    for under in ("errors.py", "config.py", "config_values.py", "clock.py"):
        assert violations(modules(under), lambda name: name.split(".")[0] not in WEB_STACK) == []


def private_reads(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), str(path))
    imported = {alias.asname or alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        name = node.attr
        if not name.startswith("_") or name.startswith("__") or name in NAMEDTUPLE_API:
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ({"self", "cls"} | imported):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue  # (an override calling the method it overrides: the object's own attribute)
        found.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} reads {ast.unparse(node)}")
    return found


def test_no_module_reads_another_objects_private_attributes():
    assert [line for path in modules() for line in private_reads(path)] == []


def test_the_checks_catch_what_they_forbid(tmp_path, monkeypatch):
    """The checks can fail: a module that breaks each rule is reported by file, line and name."""
    fake = tmp_path / "badkv"
    (fake / "consensus").mkdir(parents=True)
    (fake / "http").mkdir()
    (fake / "consensus" / "core.py").write_text("import requests\nfrom badkv import cluster\n")
    (fake / "http" / "api.py").write_text("from badkv.storage.wal import WriteAheadLog\n")
    (fake / "cluster.py").write_text("import os\nos._exit(0)\nnode._lock.acquire()\nsuper()._run()\n"
                                     "other()._run()\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", fake)
    assert violations(modules("consensus"), lambda name: is_stdlib(name) or name.startswith("badkv.consensus")) \
        == ["badkv/consensus/core.py:1 imports requests", "badkv/consensus/core.py:2 imports badkv",
            "badkv/consensus/core.py:2 imports badkv.cluster"]
    assert violations(modules("http"), lambda name: not name.startswith("badkv.storage")) \
        == ["badkv/http/api.py:1 imports badkv.storage.wal"]
    assert sorted(private_reads(fake / "cluster.py")) == ["badkv/cluster.py:3 reads node._lock",
                                                          "badkv/cluster.py:5 reads other()._run"]
