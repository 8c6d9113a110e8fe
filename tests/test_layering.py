"""Apps depend one way: campaigns → rewards → ledger → members (DESIGN.md §2).

An app may import the apps below it and ``loyalty_site.errors`` (the shared error vocabulary),
nothing above it and nothing else of ``loyalty_site``. Every ``.py`` file of each app is read
with ``ast`` (migrations included), so an import hidden in a string — ``import_string(...)``, or
a constant such as ``"loyalty_site.privacy"`` looked up later — counts like a plain import.
"""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first: each app may import the ones before it.
APPS = ("members", "ledger", "rewards", "campaigns")
PROJECT = "loyalty_site"
SHARED = "loyalty_site.errors"
FIRST_PARTY = (*APPS, PROJECT)

# Calls whose first argument names a module to import at run time.
IMPORTING_CALLS = {"import_string", "import_module"}
DOTTED = re.compile(rf"^(?:{'|'.join(FIRST_PARTY)})(?:\.[A-Za-z_]\w*)+$")
# The start of an f-string that builds a first-party path: f"loyalty_site.{name}".
DOTTED_PREFIX = re.compile(rf"^((?:{'|'.join(FIRST_PARTY)})(?:\.[A-Za-z_]\w*)*)\.")


def _resolve(module: str | None, level: int, importer: str, is_package: bool) -> str:
    """The absolute module of ``from <level dots><module> import ...`` inside ``importer``."""
    if level == 0:
        return module or ""
    parts = importer.split(".")
    if not is_package:
        parts = parts[:-1]
    if level - 1 > len(parts) - 1:
        raise ValueError(f"relative import beyond the top-level package in {importer}")
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, module] if module else base)


def references(source: str, *, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, module) for everything a module's source imports or names as a first-party path."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, module, is_package)
            for alias in node.names:
                # `from loyalty_site import privacy` reaches loyalty_site.privacy, not only the
                # package; a name that is a class or function simply lengthens the path.
                found.add((node.lineno, base if alias.name == "*" else f"{base}.{alias.name}"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in IMPORTING_CALLS and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add((node.lineno, first.value))
        elif (
            isinstance(node, ast.JoinedStr)
            and node.values
            and isinstance(node.values[0], ast.Constant)
            and (prefix := DOTTED_PREFIX.match(str(node.values[0].value)))
        ):
            # Whatever the formatted part is, the path starts in that package.
            found.add((node.lineno, f"{prefix.group(1)}.*"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and DOTTED.match(node.value)
        ):
            found.add((node.lineno, node.value))
    return sorted(found)


def _top(module: str) -> str:
    return module.split(".", 1)[0]


def _allowed(app: str, module: str) -> bool:
    top = _top(module)
    if top not in FIRST_PARTY or top == app:
        return True
    if top == PROJECT:
        return module == SHARED or module.startswith(SHARED + ".")
    return APPS.index(top) < APPS.index(app)


def violations(app: str, path: str, source: str) -> list[str]:
    """``path:line: module`` for each reference of ``app``'s file that breaks the layering."""
    module = path.removesuffix(".py").replace("/", ".")
    is_package = module.endswith(".__init__")
    module = module.removesuffix(".__init__")
    return [
        f"{path}:{line}: {name}"
        for line, name in references(source, module=module, is_package=is_package)
        if not _allowed(app, name)
    ]


def _app_files(app: str) -> list[Path]:
    return sorted((ROOT / app).rglob("*.py"))


@pytest.mark.parametrize("app", APPS)
def test_app_imports_only_downward_and_the_shared_errors(app):
    files = _app_files(app)
    assert files, f"no Python files found for {app}"
    found = []
    for file in files:
        path = file.relative_to(ROOT).as_posix()
        found += violations(app, path, file.read_text(encoding="utf-8"))
    assert found == [], f"{app} reaches upward or into {PROJECT}:\n" + "\n".join(found)


def test_shared_errors_import_no_first_party_module():
    # Every app imports it: one first-party import here would let any app reach anything.
    path = ROOT / "loyalty_site" / "errors.py"
    names = references(path.read_text(encoding="utf-8"), module=SHARED)
    assert [(line, name) for line, name in names if _top(name) in FIRST_PARTY] == []


SYNTHETIC = '''\
"""A docstring mentioning loyalty_site is prose, not a path."""
from django.utils.module_loading import import_string

from campaigns.models import Campaign
from ledger.models import Entry
from loyalty_site.errors import DomainError
from loyalty_site import errors, privacy
from members.models import Member
from . import selectors
from .models import Reward

PERMISSION = "rewards.add_reward"
ERASE = "loyalty_site.privacy.member_erase"
resource = import_string("loyalty_site.x")
action = import_string(f"loyalty_site.privacy.{name}")
error = import_string(f"loyalty_site.errors.{name}")
'''


def test_checker_names_each_upward_or_hidden_reference_with_its_line():
    assert violations("rewards", "rewards/admin.py", SYNTHETIC) == [
        "rewards/admin.py:4: campaigns.models.Campaign",
        "rewards/admin.py:7: loyalty_site.privacy",
        "rewards/admin.py:13: loyalty_site.privacy.member_erase",
        "rewards/admin.py:14: loyalty_site.x",
        "rewards/admin.py:15: loyalty_site.privacy.*",
    ]


def test_checker_finds_a_downward_app_reaching_up():
    assert violations("members", "members/admin.py", SYNTHETIC) == [
        "members/admin.py:4: campaigns.models.Campaign",
        "members/admin.py:5: ledger.models.Entry",
        "members/admin.py:7: loyalty_site.privacy",
        "members/admin.py:12: rewards.add_reward",
        "members/admin.py:13: loyalty_site.privacy.member_erase",
        "members/admin.py:14: loyalty_site.x",
        "members/admin.py:15: loyalty_site.privacy.*",
    ]


def test_checker_resolves_relative_imports_against_the_importing_module():
    source = "from . import selectors\nfrom ..models import Entry\nfrom ... import errors\n"
    assert references(source, module="ledger.management.commands.reconcile") == [
        (1, "ledger.management.commands.selectors"),
        (2, "ledger.management.models.Entry"),
        (3, "ledger.errors"),
    ]
    assert references("from .models import Member\n", module="members", is_package=True) == [
        (1, "members.models.Member")
    ]
    # A relative import that climbs out of its app would be a violation if Python allowed it.
    with pytest.raises(ValueError, match="beyond the top-level package"):
        references("from ... import x\n", module="members.admin")


def test_the_member_admin_names_nothing_of_loyalty_site():
    # Its export, erasure and import are added from loyalty_site.admin, not looked up by name.
    path = ROOT / "members" / "admin.py"
    names = references(path.read_text(encoding="utf-8"), module="members.admin")
    assert [(line, name) for line, name in names if _top(name) == PROJECT] == []
