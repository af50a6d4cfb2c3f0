"""GitHub's workflow and .ci/run run the same steps, so what fails there fails here first."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _commands(script: str) -> list[str]:
    lines = (line.strip() for line in script.splitlines())
    return [line for line in lines if line and not line.startswith(("#", "set ", "cd "))]


def test_the_workflow_runs_every_step_of_ci_run_in_order() -> None:
    steps = _commands((ROOT / ".ci" / "run").read_text())
    assert steps == ["scripts/lint.sh", "./test.sh -p no:cacheprovider"]
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    runs = [line.split("run:", 1)[1].strip() for line in workflow.splitlines() if "run:" in line]
    assert [run for run in runs if run in steps] == steps


def test_the_lint_step_checks_lint_format_and_types() -> None:
    lint = _commands((ROOT / "scripts" / "lint.sh").read_text())
    assert ".venv/bin/ruff check src tests benchmarks" in lint
    assert ".venv/bin/ruff format --check src tests benchmarks" in lint
    assert ".venv/bin/mypy src" in lint
