"""`genblaze-ingest`, the command line: workers, the API, jobs, verify, the demo.

What lives here: `app` (the parser and the process commands), `common` (exit codes,
error mapping, the API options every job command shares), `jobs` (list, status, watch,
cancel, retry), `submit` (URLs or a file into jobs) with `sources` (the file's lines,
parsed, and the split into jobs), `output` (pipes, `--output json|jsonl|table`), `view`
(what the job commands print). It may import
anything in the library; nothing in the library imports it (an import-linter
contract), so the library never pulls in argparse front ends or rich at import.
"""

from genblaze_s3.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
