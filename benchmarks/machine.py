"""The facts every benchmark records beside its timings: CPU model and the flags that matter for INT8 and
vector search, cores, and the versions of the engines timed (CPUs differ between machines of one kind)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexing.cpu import FLAGS, cpu_facts

__all__ = ["FLAGS", "cpu_facts", "machine_line", "suite_header", "write_suite"]


def machine_line(m: dict[str, Any]) -> str:
    flags = ", ".join(f"{f} {'yes' if m.get(f) else 'no'}" for f in FLAGS)
    versions = ", ".join(f"{k} {v}" for k, v in (m.get("versions") or {}).items() if v)
    return f"Machine: {m['cpu']}, {m['cores']} cores; {flags}; Python {m['python']}; {versions}"


def suite_header(title: str, command: str, machine: dict[str, Any]) -> list[str]:
    """The first lines of every suite's markdown: what it measures, the command that ran it, the machine."""
    return [f"# {title}", "", f"`{command}`", "", machine_line(machine), ""]


def write_suite(out: Path, name: str, figures: dict[str, Any], markdown_lines: list[str]) -> None:
    """benchmarks/results/<name>.json|md; `figures` carries the machine's facts (cpu_facts) and the markdown
    names them in its header (machine_line)."""
    import json

    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")
    (out / f"{name}.md").write_text("\n".join(markdown_lines) + "\n")
    print("\n".join(markdown_lines), flush=True)
