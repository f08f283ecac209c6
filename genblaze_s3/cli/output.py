"""How a command prints: one decision per run, made from `--output` and the terminal.

Why one place: a CLI composes with other tools only if every command follows the same
rules (as rclone, s5cmd and celery do):

- `--output json` (or `--json`): pure JSON on stdout, one document; `--output jsonl`: one
  JSON object per line (streams: `watch`, `submit --wait`, `list`'s jobs). Anything
  meant for a person (progress, notes, "more: --cursor ...") goes to stderr.
- `--output table` (the default) on a terminal: rich tables, colour, live bars.
- `--output table` on a pipe or a file: whole values (ids, keys, URLs never cut to 80
  columns), one record per line, fields separated by a tab, no header, no colour, no bar.

Sizes are IEC binary units everywhere (1 KiB = 1024 bytes): genblaze_s3.humanize.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

FORMATS = ("table", "json", "jsonl")
UNITS_NOTE = "sizes are IEC binary units: 1 KiB = 1024 B, 1 MiB = 1024 KiB"


@dataclass(frozen=True)
class Output:
    """Where and how this run prints; built once by `output_for(args)`."""

    format: str = "table"
    tty: bool = False
    out: TextIO = sys.stdout
    err: TextIO = sys.stderr

    @property
    def machine(self) -> bool:
        """JSON on stdout: nothing else may be printed there."""
        return self.format in ("json", "jsonl")

    @property
    def rich(self) -> bool:
        """A person at a terminal: tables, colour and live bars."""
        return self.format == "table" and self.tty

    def json(self, obj: Any) -> None:
        """One JSON value on one line of stdout (a pydantic model or plain data)."""
        text = obj.model_dump_json() if hasattr(obj, "model_dump_json") else json.dumps(obj)
        print(text, file=self.out, flush=True)

    def record(self, *fields: object) -> None:
        """One plain record: whole values separated by tabs (cut -f, awk -F'\\t' read it)."""
        print("\t".join("" if f is None else str(f) for f in fields), file=self.out, flush=True)

    def note(self, text: str) -> None:
        """A line for a person, never for a pipe's reader: always on stderr."""
        print(text, file=self.err, flush=True)

    def console(self) -> Any:
        """A rich console on stdout that never folds a line (the terminal wraps it)."""
        from rich.console import Console

        return Console(file=self.out, soft_wrap=True)


def add_output_options(p: argparse.ArgumentParser, json_help: str) -> None:
    """`--output table|json|jsonl` and `--json` (= `--output json`) on a command."""
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--output",
        "-o",
        choices=FORMATS,
        default="table",
        help="table: for people on a terminal, tab-separated records on a pipe; "
        "json: one JSON document; jsonl: one JSON object per line",
    )
    group.add_argument("--json", action="store_true", help=json_help)


def output_for(args: argparse.Namespace, *, stream: bool = False) -> Output:
    """The run's Output: `--json` is json, or jsonl for commands that print a stream."""
    fmt = getattr(args, "output", None) or "table"
    if getattr(args, "json", False):
        fmt = "jsonl" if stream else "json"
    return Output(format=fmt, tty=sys.stdout.isatty(), out=sys.stdout, err=sys.stderr)
