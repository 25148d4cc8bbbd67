"""Fixtures shared by every suite.

The shared reference data (protocol fixtures, sample data sets, real-world cases) lives outside
the repository. Tests find it through one setting, ``SHARED_DIR`` (default ``../shared`` next to
the repository root), and fail, never skip, when it is missing.
"""
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED_DIR = Path(os.environ.get("SHARED_DIR", ROOT.parent / "shared")).resolve()


def shared_path(*parts: str) -> Path:
    path = SHARED_DIR.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"shared reference data missing: {path} (set SHARED_DIR)", pytrace=False)
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return shared_path()


def load_case(case_id: str) -> dict:
    return json.loads(shared_path("cases", f"{case_id}.json").read_text())


@pytest.fixture
def case():
    return load_case
