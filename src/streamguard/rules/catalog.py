"""The rule catalog: reads the numbered SQL files and renders each into an INSERT statement.

A rule file is a header of `-- key: value` lines followed by one SELECT. The SELECT reads the
`transactions` view and returns transaction_id, account_id, amount, ts_ms and `evidence`
(MAP<STRING, STRING>). The catalog adds the alert's id, rule id, severity and weight, so a rule
file holds only its logic. Parameters are written `${name}`, declared in the header as
`-- param name: default`, and overridden by configuration as `RULE_ID.name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from pathlib import Path

_HEADER = re.compile(r"^--\s*(?P<key>[a-z_]+)(?:\s+(?P<param>[a-z_0-9]+))?\s*:\s*(?P<value>.*)$")
_PLACEHOLDER = re.compile(r"\$\{([a-z_0-9]+)\}")
_RULE_PARAM = re.compile(r"\$\{([A-Z][A-Z0-9_]*\.[a-z_0-9]+)\}")
_VIEW_NAME = re.compile(r"^--\s*view:\s*(?P<name>[a-z][a-z0-9_]*)\s*$")
_RULE_ID = re.compile(r"^[A-Z][A-Z0-9_]*$")
_SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")


class RuleError(ValueError):
    """A rule file is malformed or a parameter is invalid."""


@dataclass(frozen=True)
class Rule:
    """One rule, parsed from its file."""

    rule_id: str
    severity: str
    score_weight: int
    description: str
    body: str
    path: Path
    params: dict[str, str] = field(default_factory=dict)
    #: The file's line on which `body` begins (1-based), to point an error at the file.
    body_line: int = 1

    def values(self, overrides: dict[str, str] | None = None) -> dict[str, str]:
        """Each parameter's SQL literal: its default, or its override (keyed `RULE.param`)."""
        values = dict(self.params)
        for key, value in (overrides or {}).items():
            rule_id, _, name = key.partition(".")
            if rule_id == self.rule_id:
                if name not in self.params:
                    raise RuleError(f"{self.rule_id} has no parameter {name!r}")
                values[name] = value
        return {name: _numeric_literal(self.rule_id, name, value) for name, value in values.items()}

    def render(self, overrides: dict[str, str] | None = None) -> str:
        """The rule's SELECT with every `${param}` replaced."""
        return _substitute(
            _PLACEHOLDER,
            self.body,
            self.values(overrides),
            f"{self.path.name}: %s is not declared as a param",
        )

    def alert_sql(self, overrides: dict[str, str] | None = None) -> str:
        """The SELECT of this rule's alerts, with the columns of the alerts sink, in order."""
        return (
            f"SELECT CONCAT('{self.rule_id}:', r.transaction_id) AS alert_id,"
            f" '{self.rule_id}' AS rule_id, '{self.severity}' AS severity,"
            f" {self.score_weight} AS score_weight,\n"
            "       r.transaction_id, r.account_id, CAST(r.amount AS DECIMAL(14, 2)) AS amount,"
            " r.ts_ms, r.evidence\n"
            f"FROM (\n{self.render(overrides)}\n) AS r"
        )

    def insert_sql(self, sink: str, overrides: dict[str, str] | None = None) -> str:
        """The INSERT that runs this rule into the alerts sink."""
        return f"INSERT INTO {sink}\n{self.alert_sql(overrides)}"


@dataclass(frozen=True)
class View:
    """A shared view that rules read (`rules/views/*.sql`), computed once for all of them.

    Its `${RULE_ID.param}` placeholders take the rules' parameter values, so a window stays
    owned by its rule and configured under the rule's name.
    """

    name: str
    body: str
    path: Path

    def render(self, rules: list[Rule], overrides: dict[str, str] | None = None) -> str:
        """The view's SELECT with each `${RULE_ID.param}` replaced by that rule's value."""
        values = {
            f"{rule.rule_id}.{name}": literal
            for rule in rules
            for name, literal in rule.values(overrides).items()
        }
        return _substitute(
            _RULE_PARAM,
            self.body,
            values,
            f"{self.path.name}: %s names no parameter of a loaded rule",
        )

    def create_sql(self, rules: list[Rule], overrides: dict[str, str] | None = None) -> str:
        """The CREATE TEMPORARY VIEW statement."""
        return f"CREATE TEMPORARY VIEW {self.name} AS\n{self.render(rules, overrides)}"


def _substitute(pattern: re.Pattern[str], body: str, values: dict[str, str], error: str) -> str:
    """`body` with each placeholder of `pattern` replaced from `values` (`error`: %s = it)."""

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise RuleError(error.replace("%s", f"${{{key}}}", 1))
        return values[key]

    return pattern.sub(substitute, body)


def parse_view(path: Path) -> View:
    """Parse one view file: a `-- view: name` line, comments, then one SELECT."""
    name = ""
    body_lines: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _VIEW_NAME.match(line.strip())
        if match and not name:
            name = match.group("name")
        elif not line.strip().startswith("--"):
            body_lines.append(line)
    body = "\n".join(body_lines).strip().rstrip(";")
    if not name:
        raise RuleError(f"{path.name}: a view file starts with `-- view: name`")
    if not body.upper().startswith(("SELECT", "WITH")):
        raise RuleError(f"{path.name}: the body must be one SELECT")
    return View(name=name, body=body, path=path)


def views_dir() -> Path:
    """The folder of the packaged shared views."""
    return Path(str(resources.files("streamguard.rules") / "views"))


def load_views(folder: Path | None = None) -> list[View]:
    """Every shared view, in file order."""
    return [parse_view(path) for path in sorted((folder or views_dir()).glob("*.sql"))]


def _numeric_literal(rule_id: str, name: str, value: str) -> str:
    """Parameters are numbers only, so that configuration can never inject SQL."""
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise RuleError(f"{rule_id}.{name} must be a number, got {value!r}") from exc
    if not number.is_finite():
        raise RuleError(f"{rule_id}.{name} must be finite, got {value!r}")
    return str(number)


def parse_rule(path: Path) -> Rule:
    """Parse one rule file."""
    header: dict[str, str] = {}
    params: dict[str, str] = {}
    body_lines: list[str] = []
    in_header = True
    body_line = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        match = _HEADER.match(line.strip()) if in_header else None
        if match:
            if match.group("key") == "param" and match.group("param"):
                params[match.group("param")] = match.group("value").strip()
            else:
                header[match.group("key")] = match.group("value").strip()
            continue
        if in_header and line.strip().startswith("--"):
            continue
        in_header = False
        body_line = body_line or (number if line.strip() else 0)
        body_lines.append(line)
    missing = {"id", "severity", "weight", "description"} - header.keys()
    if missing:
        raise RuleError(f"{path.name}: header lacks {', '.join(sorted(missing))}")
    rule_id = header["id"]
    if not _RULE_ID.match(rule_id):
        raise RuleError(f"{path.name}: rule id {rule_id!r} must be UPPER_SNAKE_CASE")
    if header["severity"] not in _SEVERITIES:
        raise RuleError(f"{path.name}: severity must be one of {', '.join(_SEVERITIES)}")
    body = "\n".join(body_lines).strip().rstrip(";")
    if not body.upper().startswith(("SELECT", "WITH")):
        raise RuleError(f"{path.name}: the body must be one SELECT")
    return Rule(
        rule_id=rule_id,
        severity=header["severity"],
        score_weight=int(header["weight"]),
        description=header["description"],
        body=body,
        path=path,
        params=params,
        body_line=body_line or 1,
    )


def rules_dir() -> Path:
    """The folder of the packaged rule files."""
    return Path(str(resources.files("streamguard.rules") / "sql"))


def load_rules(folder: Path | None = None) -> list[Rule]:
    """Every rule in the folder, in file order; ids must be unique."""
    rules = [parse_rule(path) for path in sorted((folder or rules_dir()).glob("*.sql"))]
    seen: set[str] = set()
    for rule in rules:
        if rule.rule_id in seen:
            raise RuleError(f"rule id {rule.rule_id} is defined twice")
        seen.add(rule.rule_id)
    return rules


def check_overrides(rules: list[Rule], overrides: dict[str, str]) -> None:
    """Refuse an override that names no rule or no parameter: a typo must not pass silently."""
    params = {f"{rule.rule_id}.{name}" for rule in rules for name in rule.params}
    unknown = sorted(set(overrides) - params)
    if unknown:
        raise RuleError(f"unknown rule parameter(s): {', '.join(unknown)}")
    for rule in rules:
        rule.render(overrides)
