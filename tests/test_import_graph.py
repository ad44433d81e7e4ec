"""Imports run one way (SPEC §3, STYLE.md): ``zenzefi`` imports no app; ``accounts → events → wallet → access ←
proxy``; ``notifications`` and ``analytics`` sit on top and nothing imports them.

Every ``import`` statement of the project's packages counts, wherever it is: at module level, inside a function
(the "lazy" import that hides a cycle), under ``if TYPE_CHECKING``. Migrations count too (they may import their
own app and those below it). Dotted paths in settings (``import_string``) are how zenzefi names an app's code
without importing it, so they are not imports.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("accounts", "events", "wallet", "access", "proxy", "notifications", "analytics")
TOP = {"notifications", "analytics"}
# What each package may import, besides itself (and django, the standard library, third-party packages).
ALLOWED: dict[str, set[str]] = {
    "zenzefi": set(),
    "accounts": set(),
    "events": {"accounts"},
    "wallet": {"accounts", "events"},
    "access": {"accounts", "events", "wallet"},
    "proxy": {"accounts", "events", "wallet", "access"},
    "notifications": set(APPS) - TOP,
    "analytics": set(APPS) - TOP,
}
# Every app may import zenzefi (settings, errors, metrics plumbing): it sits below them all.
for app in APPS:
    ALLOWED[app].add("zenzefi")
PACKAGES = tuple(ALLOWED)


def imported_packages(tree: ast.AST, package: str) -> list[tuple[int, str]]:
    """(line, top-level project package) of every import in ``tree``, a module of ``package``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [package] if node.level else [node.module or ""]  # relative: inside its own package
        else:
            continue
        for name in names:
            top = name.split(".")[0]
            if top in PACKAGES:
                found.append((node.lineno, top))
    return found


def violations(root: Path) -> list[str]:
    """``path:line: a imports b`` for every import the layering forbids, under ``root``."""
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for line, imported in imported_packages(tree, package):
                if imported != package and imported not in ALLOWED[package]:
                    allowed = ", ".join(sorted(ALLOWED[package])) or "nothing"
                    found.append(f"{path.relative_to(root)}:{line}: {package} imports {imported} (allowed: {allowed})")
    return found


def test_imports_run_one_way():
    found = violations(ROOT)

    assert not found, "Imports against the layering (SPEC §3):\n" + "\n".join(found)


def test_every_package_is_read():
    counts = {package: len(list((ROOT / package).rglob("*.py"))) for package in PACKAGES}

    assert all(counts.values()), counts  # a renamed package would otherwise pass unchecked


def test_function_level_and_relative_imports_count(tmp_path):
    (tmp_path / "zenzefi").mkdir()
    (tmp_path / "zenzefi" / "views.py").write_text(
        "import os\n\ndef home(request):\n    from access.prices import price_table\n    return price_table()\n"
    )
    (tmp_path / "wallet").mkdir()
    (tmp_path / "wallet" / "services.py").write_text(
        "from . import models\nfrom accounts.services import audit_record\nimport analytics.selectors\n"
    )
    (tmp_path / "analytics").mkdir()
    (tmp_path / "analytics" / "views.py").write_text("from notifications.models import Notification\n")

    assert violations(tmp_path) == [
        "zenzefi/views.py:4: zenzefi imports access (allowed: nothing)",
        "wallet/services.py:3: wallet imports analytics (allowed: accounts, events, zenzefi)",
        "analytics/views.py:1: analytics imports notifications "
        "(allowed: access, accounts, events, proxy, wallet, zenzefi)",
    ]
