"""A plain (not editable) `pip install .` gives a working service: migrations and templates
are inside the wheel."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return next(out.glob("stax_import-*.whl"))


def test_the_wheel_carries_migrations_templates_and_the_console_script(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "store/migrations/env.py" in names
    assert "store/migrations/script.py.mako" in names
    assert any(n.startswith("store/migrations/versions/0001") for n in names)
    assert {
        "templates/help/subject.txt",
        "templates/help/body.txt",
        "templates/help/body.html",
    } <= names
    assert "config/example.toml" in names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "stax-import = ingest.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_the_installed_wheel_migrates_a_fresh_database(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--quiet",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        timeout=300,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAX_")}
    env.update(PYTHONPATH=str(target), STAX_DATA_DIR=str(tmp_path / "var"))
    code = (
        "import ingest, sys; from ingest.cli import main; "
        "print(ingest.__file__); sys.exit(main(['db', 'upgrade']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith(str(target))  # not the checkout
    assert (tmp_path / "var" / "stax-import.db").is_file()
