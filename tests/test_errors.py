"""One error vocabulary: every code has one class and one HTTP status, wherever it is raised.

A channel (and a form) relies on a code meaning one thing; two statuses for one code, or two
classes that drift apart, break that quietly. The apps' sources are read (ast) for every
``DomainError`` subclass and every ``raise SomeError(..., code="...")``.
"""

import ast
import importlib
import re
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from loyalty_site.errors import ERROR_CODES, Conflict, DomainError, NotFound

ROOT = Path(__file__).resolve().parent.parent
APPS = ("loyalty_site", "members", "ledger", "rewards", "campaigns")


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _literal_code(call: ast.Call):
    """The call's `code=` when it is a literal; None when it has none; ... when it is computed."""
    for keyword in call.keywords:
        if keyword.arg == "code":
            value = keyword.value
            return value.value if isinstance(value, ast.Constant) else ...
    return None


def raised(tree: ast.AST, namespace: dict, where: str):
    """(code, status, class, place) of each `raise X(...)` in `tree` where X is a DomainError."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call)):
            continue
        if not isinstance(node.exc.func, ast.Name | ast.Attribute):
            continue
        try:
            # A name or attribute only: looking it up in the module runs nothing.
            cls = eval(compile(ast.Expression(node.exc.func), where, "eval"), namespace)
        except (NameError, AttributeError):
            continue  # a local's or self's: not a module-level error class
        if not (isinstance(cls, type) and issubclass(cls, DomainError)):
            continue
        code = _literal_code(node.exc)
        if code is ...:
            continue
        yield code or cls.code, cls.status, cls, f"{where}:{node.lineno}"


def clashes(uses) -> list[str]:
    """A line per code that has more than one status or class, naming where each is from."""
    by_code = defaultdict(set)
    for code, status, cls, where in uses:
        by_code[code].add((status, f"{cls.__module__}.{cls.__qualname__}", where))
    problems = []
    for code, found in sorted(by_code.items()):
        if len({status for status, _, _ in found}) > 1 or len({name for _, name, _ in found}) > 1:
            places = "; ".join(
                f"{status} {name} at {where}" for status, name, where in sorted(found)
            )
            problems.append(f"{code}: {places}")
    return problems


def app_modules():
    """(module, tree, path) of every app source file that defines a class or raises."""
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), str(path))
            if not any(isinstance(n, ast.Raise | ast.ClassDef) for n in ast.walk(tree)):
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            yield importlib.import_module(name), tree, path.relative_to(ROOT)


def error_uses():
    uses = []
    for module, tree, path in app_modules():
        uses.extend(raised(tree, vars(module), str(path)))
    for cls in _subclasses(DomainError):
        if cls.__module__.split(".")[0] in APPS and "code" in vars(cls):
            uses.append((cls.code, cls.status, cls, "class"))
    return uses


def domain_error_classes() -> list[type[DomainError]]:
    """Every error class of the apps (after app_modules() has imported them)."""
    list(app_modules())
    return [c for c in _subclasses(DomainError) if c.__module__.split(".")[0] in APPS]


def test_every_code_has_one_class_and_one_status():
    uses = error_uses()
    codes = {code for code, *_ in uses}
    # The collection itself works: codes raised ad hoc, by class, and across apps are found.
    assert {"insufficient_points", "member_not_found", "reason_required", "unknown_line"} <= codes
    assert clashes(uses) == []


class _Taken(Conflict):
    code = "taken"


SOURCE = """
def one():
    raise Conflict(code="taken")

def two():
    raise NotFound(code="gone")

def three():
    raise NotFound(code="gone")

def four(code):
    raise NotFound(code=code)
"""


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ([], ["taken"]),  # the class and the ad-hoc Conflict: two classes, one status
        ([("gone", 410, NotFound, "x:1")], ["gone", "taken"]),  # two statuses
    ],
)
def test_the_check_finds_a_code_with_two_classes_or_two_statuses(extra, expected):
    namespace = {"Conflict": Conflict, "NotFound": NotFound}
    uses = [*raised(ast.parse(SOURCE), namespace, "source"), *extra]
    uses.append((_Taken.code, _Taken.status, _Taken, "class"))
    assert [line.split(":")[0] for line in clashes(uses)] == expected


def test_every_code_raised_is_in_the_one_list_with_its_status():
    statuses = {code: status for code, status, *_ in error_uses()}
    missing = sorted(set(statuses) - set(ERROR_CODES))
    assert missing == [], f"loyalty_site.errors.ERROR_CODES lacks: {missing}"
    wrong = {c: (ERROR_CODES[c], s) for c, s in statuses.items() if ERROR_CODES[c] != s}
    assert wrong == {}


def test_the_readme_lists_every_code_with_its_one_status():
    readme = (ROOT / "README.md").read_text()
    listed = dict(re.findall(r"^\| `([a-z_]+)` \| (\d{3}) \|", readme, flags=re.M))
    missing = sorted(set(ERROR_CODES) - set(listed))
    assert missing == [], f"README's code table lacks: {missing}"
    wrong = {code: (listed[code], s) for code, s in ERROR_CODES.items() if int(listed[code]) != s}
    assert wrong == {}
    assert sorted(set(listed) - set(ERROR_CODES)) == []


def test_the_committed_openapi_schema_names_every_code():
    schema = yaml.safe_load((ROOT / "loyalty_site" / "api" / "openapi.yaml").read_text())
    enumerated = set(schema["components"]["schemas"]["ErrorCode"]["enum"])
    raised = {code for code, *_ in error_uses()}
    assert sorted(raised - enumerated) == [], "regenerate loyalty_site/api/openapi.yaml"
    assert enumerated == set(ERROR_CODES)
    # Each operation's error answers name codes of the one list, under their own status.
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                codes = response["content"]["application/json"]["schema"]["allOf"][1]
                for code in codes["properties"]["code"]["enum"]:
                    assert ERROR_CODES[code] == int(status), (method, path, code)
