"""The `gpuenv` command: the verbs, and the one place that turns errors into messages and exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input, 3 impossible request (errors.py). `--json` prints one
JSON document on stdout; `--debug` lets tracebacks through. Both are accepted before or after the
verb (`gpuenv --json spec check`, `gpuenv spec check --json`).
"""

from __future__ import annotations

import sys
import traceback
from typing import Any, Callable, NoReturn, Optional, Sequence

import click

from gpuenv.cli.output import Renderer, Result
from gpuenv.errors import EXIT_FAILURE, BadInput, GpuenvError

F = Callable[..., Any]


def global_options(fn: F) -> F:
    """--json and --debug on a verb; their values are read once, in `run`, before parsing."""
    fn = click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout.")(fn)
    return click.option("--debug", is_flag=True, help="Show tracebacks of errors.")(fn)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    from gpuenv import __version__
    from gpuenv.kb.refresh import snapshot_date

    renderer: Renderer = ctx.obj
    kb = snapshot_date()
    kb_text = kb.isoformat() if kb else "unknown"
    renderer.result(Result({"version": __version__, "kb_snapshot": kb and kb_text},
                           lambda c: c.print(f"gpuenv {__version__} (knowledge base of {kb_text})")))
    ctx.exit(0)


class LazyGroup(click.Group):
    """Verbs are imported when used: `gpuenv plan torch` loads neither the spec model nor the engine."""

    VERBS = {
        "init": "gpuenv.cli.init:init",
        "spec": "gpuenv.cli.spec:spec",
        "plan": "gpuenv.cli.plan:plan",
        "matrix": "gpuenv.cli.plan:matrix",
        "kb": "gpuenv.cli.kb:kb",
        "doctor": "gpuenv.cli.doctor:doctor",
        "generate": "gpuenv.cli.generate:generate",
        "build": "gpuenv.cli.up:build",
        "up": "gpuenv.cli.up:up",
        "lock": "gpuenv.cli.lock:lock",
        "verify": "gpuenv.cli.verify:verify",
        "ls": "gpuenv.cli.env:ls",
        "status": "gpuenv.cli.env:status",
        "logs": "gpuenv.cli.env:logs",
        "shell": "gpuenv.cli.env:shell",
        "exec": "gpuenv.cli.env:exec_",
        "down": "gpuenv.cli.env:down",
        "rm": "gpuenv.cli.env:rm",
        "push": "gpuenv.cli.registry:push",
        "pull": "gpuenv.cli.registry:pull",
        "save": "gpuenv.cli.bundle:save",
        "load": "gpuenv.cli.bundle:load",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        target = self.VERBS.get(cmd_name)
        if target is None:
            return None
        from importlib import import_module

        module, _, attr = target.partition(":")
        return getattr(import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
@global_options
def cli(**_: Any) -> None:
    """gpuenv: one short request to a working, verified GPU container for deep learning.

    \b
    Start with:  gpuenv init tensorflow==1.2.1 --python 3.6 --jupyter
    Then check:  gpuenv spec check
    """


def run(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI on `argv` and return its exit code; prints, never raises (unless --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    options = args[: args.index("--")] if "--" in args else args
    renderer = Renderer(json_mode="--json" in options, debug="--debug" in options)
    try:
        result = cli.main(args=args, prog_name="gpuenv", standalone_mode=False, obj=renderer)
    except GpuenvError as exc:
        return _failed(renderer, exc)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return renderer.error(_usage_error(exc))
    except (click.Abort, KeyboardInterrupt):
        renderer.stderr.print("aborted", markup=False)
        return 130
    except Exception as exc:  # the one catch-all: an internal error, said as such
        return _internal(renderer, exc)
    return renderer.result(result) if isinstance(result, Result) else (result or 0)


def _failed(renderer: Renderer, exc: GpuenvError) -> int:
    if renderer.debug:
        traceback.print_exc()
    return renderer.error(exc)


def _usage_error(exc: click.ClickException) -> BadInput:
    ctx = getattr(exc, "ctx", None)
    command = ctx.command_path if ctx is not None else "gpuenv"
    return BadInput(exc.format_message(), f"see `{command} --help`")


def _internal(renderer: Renderer, exc: Exception) -> int:
    if renderer.debug:
        raise exc
    error = GpuenvError(f"internal error: {type(exc).__name__}: {exc}",
                        "this is a bug in gpuenv: run again with --debug and report the traceback")
    renderer.error(error)
    return EXIT_FAILURE


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    sys.exit(run(argv))
