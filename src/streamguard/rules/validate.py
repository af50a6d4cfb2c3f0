"""Compile the rules on the Flink engine without running them."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from streamguard.config import Settings
from streamguard.rules.catalog import Rule, RuleError
from streamguard.rules.engine import ALERTS_SINK, Source, create_environment, register_tables


@dataclass(frozen=True)
class Verdict:
    """One rule's compile result: the error's first lines, or none."""

    rule: Rule
    error: str | None = None


def validate(settings: Settings, rules: list[Rule]) -> list[Verdict]:
    """Plan each rule's INSERT (EXPLAIN) against the real table definitions, one by one.

    The source is a file instead of Kafka: planning reads neither, and validating then needs no
    broker and no connector jar. Column types, the watermark and the views are the live ones.
    """
    env = create_environment(settings)
    with tempfile.TemporaryDirectory(prefix="streamguard-validate-") as folder:
        register_tables(
            env, settings, Source.file(Path(folder) / "none.jsonl"), {"connector": "blackhole"}
        )
        return [_explain(env, rule, settings.rule_params) for rule in rules]


def _explain(env: object, rule: Rule, overrides: dict[str, str]) -> Verdict:
    try:
        sql = rule.insert_sql(ALERTS_SINK, overrides)
        env.explain_sql(sql)  # type: ignore[attr-defined]
    except RuleError as exc:
        return Verdict(rule, str(exc))
    except Exception as exc:  # the planner's errors arrive as py4j-wrapped Java exceptions
        return Verdict(rule, in_file(rule, _first_lines(str(exc))))
    return Verdict(rule)


#: Lines of `Rule.insert_sql` before the rule's own body: the INSERT and the alert's columns.
_PRELUDE_LINES = 4
_AT_LINE = re.compile(r"\bline (\d+), column (\d+)")


def in_file(rule: Rule, message: str) -> str:
    """The planner's message with its statement line turned into the rule file's line."""
    match = _AT_LINE.search(message)
    if match is None:
        return message
    line = rule.body_line + int(match.group(1)) - _PRELUDE_LINES - 1
    if line < rule.body_line:
        return message
    at = f"{rule.path.name}, line {line}, column {match.group(2)}"
    return f"{at}: " + _AT_LINE.sub(f"line {line}, column {match.group(2)}", message, count=1)


def _first_lines(message: str, count: int = 3) -> str:
    lines = [line for line in message.splitlines() if line.strip() and "\tat " not in line]
    return "\n".join(lines[:count])
