"""Every message a service gives a person goes through the catalogue.

The pages test reads what the forms answer, but a rule deep in a service is reached only
by the right input; this reads the code instead: a literal sentence handed to
``problems.add``, ``DomainValidationError``, ``ConflictError`` or ``flash`` (or stored as
``problems[field] = ...``, or returned as ``{field: message}``) must be wrapped in
``_()``; so must one raised in any exception a page shows (a refused import, a geometry,
a schema's rule), all but those kept for programs and operators (PROGRAM_EXCEPTIONS). A
page never flashes an error's ``detail`` either: it names the fields in English
(``for_people()`` gives the messages alone). Nor does the system write an English sentence
into a record officers read (RECORDS).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("nguon", "registry", "traceability", "integrations")
CALLS = {"add", "DomainValidationError", "ConflictError", "flash", "ForPeople"}
# Records officers read, written by the system (a case's title, an alarm's detail): the
# argument at this position.
RECORDS = {"open_case": 0, "flag": 2}
# Exceptions whose words are for programs (API tokens, identifiers: IdentifierError carries
# catalogued words in ``in_words()``) or for an operator at the command line.
PROGRAM_EXCEPTIONS = {"ValueError", "TypeError", "RuntimeError", "TimeoutError",
                      "FileNotFoundError", "ClickException", "UsageError", "TokenError",
                      "IdentifierError", "EpcisError"}  # fmt: skip
# Messages for programs, not people (the resolver's and EPCIS's problem details follow
# their standards' wording: capture, queries, JSON-LD contexts, query subscriptions), and
# start-up configuration errors.
NOT_FOR_PEOPLE = {"traceability/resolver", "traceability/epcis", "traceability/fastpath",
                  "traceability/jsonld.py", "traceability/subscription",
                  "nguon/config.py", "integrations/"}  # fmt: skip


def _sentence(node: ast.AST) -> bool:
    if isinstance(node, ast.JoinedStr):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, str) and " " in node.value


def uncatalogued(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        messages: list[ast.AST] = []
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in CALLS:
                args = node.args[1:] if name == "add" else node.args[:1]
                messages = [v for a in args for v in (a.values if isinstance(a, ast.Dict) else [a])]
                first = node.args[0] if node.args else None
                if name == "flash" and isinstance(first, ast.Attribute) and first.attr == "detail":
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} flashes .detail")
            if name in RECORDS and len(node.args) > RECORDS[name]:
                messages = [node.args[RECORDS[name]]]
        elif isinstance(node, ast.Return) and isinstance(node.value, ast.Dict):
            messages = [v for v in node.value.values if v is not None]  # {field: message}
        elif isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
            func = node.exc.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.endswith(("Error", "Refused")) and name not in PROGRAM_EXCEPTIONS | CALLS:
                args = [*node.exc.args, *(k.value for k in node.exc.keywords)]
                messages = [v for a in args for v in (a.values if isinstance(a, ast.Dict) else [a])]
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Subscript)
            and getattr(node.targets[0].value, "id", "") == "problems"
        ):
            messages = [node.value]
        found += [f"{path.relative_to(ROOT)}:{m.lineno}" for m in messages if _sentence(m)]
    return found


def test_service_messages_go_through_the_catalogue() -> None:
    sources = [
        path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if not any(str(path.relative_to(ROOT)).startswith(p) for p in NOT_FOR_PEOPLE)
    ]
    assert len(sources) > 40
    assert [site for path in sources for site in uncatalogued(path)] == []
