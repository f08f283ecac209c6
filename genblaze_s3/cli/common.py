"""What every API command shares: the exit codes, one error mapping, the client, and the
--api-url / --token / output options. `jobs.py` and `submit.py` both build on it.

Every command talks to the API through `IngestClient`; errors are mapped once (in
`run_job_command`) to one line on stderr and a distinct exit code, never a traceback:

| exit | meaning                                       |
|------|-----------------------------------------------|
| 0    | done (for watch/--wait: the job succeeded)    |
| 1    | the job ended failed or canceled              |
| 2    | bad command line (argparse)                   |
| 3    | API unreachable                               |
| 4    | 401/403: token missing or wrong               |
| 5    | 404: no such job for this token               |
| 6    | 409: the job's state forbids it               |
| 7    | 422: request refused as invalid               |
| 8    | 503: API up, store or broker down             |
| 9    | any other API error (e.g. 429, 500)           |
| 10   | the URL answers, but is not a genblaze API    |

A malformed API URL (`127.0.0.1:8000`, no `http://`) is a usage error (2). Output rules
(pipes, `--output`, JSON on stdout only, IEC units) are in cli/output.py.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from genblaze_s3.cli.output import UNITS_NOTE, add_output_options

if TYPE_CHECKING:
    from genblaze_s3.settings import Settings

EXIT_JOB_FAILED = 1
EXIT_UNREACHABLE = 3
EXIT_UNAUTHORIZED = 4
EXIT_NOT_FOUND = 5
EXIT_CONFLICT = 6
EXIT_INVALID = 7
EXIT_UNAVAILABLE = 8
EXIT_API_ERROR = 9
EXIT_NOT_GENBLAZE = 10
EXIT_USAGE = 2
EXIT_CODES_HELP = (
    "exit codes: 0 ok, 1 job failed/canceled, 2 usage (options, API URL, --from-file line), "
    "3 API unreachable, 4 unauthorized, 5 not found, 6 conflict, 7 invalid request, "
    "8 service unavailable, 9 other API error, 10 the URL is not a genblaze API"
)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown on every option, descriptions kept as written."""


def _exit_code(exc: BaseException) -> int:
    from genblaze_s3.ingest.client import http as ac

    for cls, code in (
        (ac.NotGenblazeAPIError, EXIT_NOT_GENBLAZE),
        (ac.InvalidAPIURLError, EXIT_USAGE),
        (ac.APIUnreachableError, EXIT_UNREACHABLE),
        (ac.UnauthorizedError, EXIT_UNAUTHORIZED),
        (ac.JobNotFoundAPIError, EXIT_NOT_FOUND),
        (ac.ConflictError, EXIT_CONFLICT),
        (ac.InvalidRequestError, EXIT_INVALID),
        (ac.ServiceUnavailableError, EXIT_UNAVAILABLE),
    ):
        if isinstance(exc, cls):
            return code
    return EXIT_API_ERROR


def run_job_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run one command; API errors become one line on stderr and an exit code."""
    from genblaze_s3.ingest.client.http import IngestAPIError

    try:
        return func(args)
    except IngestAPIError as exc:
        print(f"genblaze-ingest {args.cmd}: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130


def client_for(args: argparse.Namespace) -> Any:
    """The IngestClient of this run (--api-url, --token or GENBLAZE_API_TOKEN)."""
    from genblaze_s3.ingest.client.http import IngestClient, UnauthorizedError

    token = args.token or args.env_token
    if not token:
        raise UnauthorizedError("no token: set GENBLAZE_API_TOKEN or pass --token", status=401)
    return IngestClient(args.api_url, token)


def job_exit(state: str) -> int:
    """0 for a succeeded job, 1 for a failed or canceled one."""
    return 0 if state == "succeeded" else EXIT_JOB_FAILED


def api_url(text: str) -> str:
    """argparse type of --api-url (also applied to GENBLAZE_API_URL, its default)."""
    from genblaze_s3.ingest.client.http import InvalidAPIURLError, parse_api_url

    try:
        return parse_api_url(text)
    except InvalidAPIURLError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (from --api-url or GENBLAZE_API_URL)") from None


def api_options(p: argparse.ArgumentParser, config: Settings, *, json_help: str | None) -> None:
    """--api-url, --token and the output options every API command takes."""
    p.add_argument(
        "--api-url",
        type=api_url,
        default=config.api_url,
        help="the ingest API, http(s)://host[:port] (GENBLAZE_API_URL)",
    )
    # Not an option default: --help must never print the token.
    p.set_defaults(env_token=config.secret("api_token"))
    p.add_argument(
        "--token",
        default=None,
        help="your tenant's bearer token; when omitted, GENBLAZE_API_TOKEN is used",
    )
    if json_help:
        add_output_options(p, json_help)


def command(
    sub: Any, name: str, helptext: str, func: Callable[[argparse.Namespace], int]
) -> argparse.ArgumentParser:
    """A subcommand whose API errors become one line on stderr and an exit code."""
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=helptext,
        description=helptext,
        epilog=f"{EXIT_CODES_HELP}\n{UNITS_NOTE}",
        formatter_class=_Formatter,
    )
    p.set_defaults(func=lambda a, f=func: run_job_command(f, a))
    return p
