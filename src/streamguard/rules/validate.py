"""Compile the rules on the Flink engine without running them."""

from __future__ import annotations

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
        return Verdict(rule, _first_lines(str(exc)))
    return Verdict(rule)


def _first_lines(message: str, count: int = 3) -> str:
    lines = [line for line in message.splitlines() if line.strip() and "\tat " not in line]
    return "\n".join(lines[:count])
