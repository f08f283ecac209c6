"""`genblaze-ingest`, the command line: workers, the API, jobs, verify, the demo.

What lives here: `app` (the parser and the process commands), `jobs` (the job
commands over the HTTP API), `view` (what the job commands print). It may import
anything in the library; nothing in the library imports it (an import-linter
contract), so the library never pulls in argparse front ends or rich at import.
"""

from genblaze_s3.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
