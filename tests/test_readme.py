"""The README's recipes are true: the code blocks of "Adding a subsystem", "Adding a case" and "Adding a
backend" are excerpts of examples/numpy_port, which tests/test_external_project.py installs and runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("Adding a subsystem", "Adding a case", "Adding a backend")


def _blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    return [
        re.sub(r"(?m)^ {3}", "", b).strip() for b in re.findall(r"```(?:python|toml)\n(.*?)```", body, re.S)
    ]


def _normalized(text: str) -> str:
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())


def test_recipe_code_is_the_example_project_s() -> None:
    example = "\n".join(
        _normalized(p.read_text(encoding="utf-8"))
        for p in sorted((ROOT / "examples" / "numpy_port").rglob("*"))
        if p.suffix in (".py", ".toml")
    )
    for section in SECTIONS:
        blocks = _blocks(section)
        assert blocks, f"README section {section!r} has no code"
        for block in blocks:
            assert _normalized(block) in example, (
                f"README {section!r} block is not in examples/numpy_port:\n{block}"
            )
