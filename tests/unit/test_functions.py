"""The rules' own Flink SQL functions: the jar is compiled once per source version and cached."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from streamguard.rules import functions


def test_the_jar_is_built_once_into_the_cache_with_every_function(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    jar = functions.functions_jar()
    assert jar.parent == tmp_path / "streamguard"
    with zipfile.ZipFile(jar) as archive:
        names = set(archive.namelist())
    for class_name in functions.FUNCTIONS.values():
        assert class_name.replace(".", "/") + ".class" in names
    built_at = jar.stat().st_mtime_ns
    assert functions.functions_jar() == jar
    assert jar.stat().st_mtime_ns == built_at
    assert [path.name for path in jar.parent.iterdir()] == [jar.name]


def test_a_missing_jdk_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(functions.shutil, "which", lambda name: None)
    with pytest.raises(functions.FunctionsBuildError, match="javac not found"):
        functions.functions_jar()
