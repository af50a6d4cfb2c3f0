"""benchmarks/bench_generator.py's pure parts for --stream: rates, trees, medians and ratios."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_generator", ROOT / "benchmarks" / "bench_generator.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_generator"] = module
    spec.loader.exec_module(module)
    return module


def test_rates_are_positive_whole_tx_s(bench: ModuleType) -> None:
    assert bench.parse_rates("5000,20000") == [5000, 20000]
    for bad in ("", "0", "5000,-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            bench.parse_rates(bad)


def test_the_other_tree_runs_first_and_each_tree_its_own_src(
    bench: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "src" / "streamguard").mkdir(parents=True)
    assert bench.trees(None) == {bench.THIS_TREE: str(ROOT / "src")}
    assert list(bench.trees(str(tmp_path)).items()) == [
        (str(tmp_path), str(tmp_path / "src")),
        (bench.THIS_TREE, str(ROOT / "src")),
    ]
    with pytest.raises(SystemExit):
        bench.trees(str(tmp_path / "nowhere"))


def run(tree: str, rate: int, us: float, p99: float) -> dict[str, Any]:
    return {
        "tree": tree,
        "rate": rate,
        "transactions": rate * 20,
        "cpu_us_per_tx": us,
        "cpu_pct_of_core": us * rate / 1e4,
        "event_to_append_ms": {"p50_ms": p99 / 2, "p99_ms": p99},
    }


def test_summary_takes_medians_per_rate_and_tree_and_ratios_to_the_first(
    bench: ModuleType,
) -> None:
    runs = [
        run("old", 5000, 210, 20),
        run("new", 5000, 60, 40),
        run("old", 5000, 214, 22),
        run("new", 5000, 56, 36),
        run("old", 5000, 300, 30),
        run("new", 5000, 50, 30),
        run("old", 20000, 55, 10),
        run("new", 20000, 27.5, 12),
    ]
    rows = {(row["rate"], row["tree"]): row for row in bench.stream_summary(runs)}
    assert list(rows) == [(5000, "old"), (5000, "new"), (20000, "old"), (20000, "new")]
    assert rows[5000, "old"]["cpu_us_per_tx"] == 214 and rows[5000, "old"]["rounds"] == 3
    assert rows[5000, "new"]["cpu_us_per_tx"] == 56
    assert rows[5000, "new"]["append_p99_ms"] == 36
    assert rows[5000, "new"]["cpu_ratio"] == round(56 / 214, 3)
    assert rows[5000, "new"]["p99_ratio"] == round(36 / 22, 3)
    assert rows[5000, "old"]["cpu_ratio"] == 1.0
    assert rows[20000, "new"]["cpu_ratio"] == 0.5
