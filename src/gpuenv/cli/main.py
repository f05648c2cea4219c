"""The `gpuenv` command: the verbs, and the one place that turns errors into messages and exit codes.

Exit codes: 0 ok, 1 failure, 2 bad input, 3 impossible request, 130 interrupted (errors.py). `--json`
prints one JSON document on stdout; `--debug` lets tracebacks through. Both are accepted before or
after the verb (`gpuenv --json spec check`, `gpuenv spec check --json`), but never inside a command
that a verb passes on (`gpuenv exec python train.py --json`: that --json is train.py's).
"""

from __future__ import annotations

import difflib
import sys
import traceback
from typing import Any, Callable, NoReturn, Optional, Sequence, TypeVar

import click

import gpuenv
import gpuenv.kb

from gpuenv.cli.output import Renderer, Result
from gpuenv.errors import EXIT_FAILURE, BadInput, GpuenvError, Interrupted, StorageError
from gpuenv.lazy import load

F = TypeVar("F", bound=Callable[..., Any])     # a click command function, or a decorator's result


def global_options(fn: F) -> F:
    """--json and --debug on a verb; their values are read once, in `run`, before parsing."""
    fn = click.option("--json", "json_mode", is_flag=True, help="Print one JSON document on stdout.")(fn)
    return click.option("--debug", is_flag=True, help="Show tracebacks of errors.")(fn)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if not value or ctx.resilient_parsing:
        return
    renderer: Renderer = ctx.obj
    version = gpuenv.__version__            # both load on first use (their faces): only --version needs them
    kb = gpuenv.kb.refresh.snapshot_date()
    kb_text = kb.isoformat() if kb else "unknown"
    renderer.result(Result({"version": version, "kb_snapshot": kb and kb_text},
                           lambda c: c.print(f"gpuenv {version} (knowledge base of {kb_text})")))
    ctx.exit(0)


class VerbGroup(click.Group):
    """A group whose unknown verb is bad input with the verbs it is closest to (`gpuenv stauts`)."""

    def resolve_command(self, ctx: click.Context,
                        args: list[str]) -> tuple[Optional[str], Optional[click.Command], list[str]]:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            raise BadInput(f"No such command '{name}'.", _suggestion(ctx, name, self))
        return super().resolve_command(ctx, args)


def _suggestion(ctx: click.Context, name: str, group: click.Group) -> str:
    close = difflib.get_close_matches(name, group.list_commands(ctx), n=3, cutoff=0.6)
    listed = f"`{ctx.command_path} --help` lists them"
    if not close:
        return listed
    return "did you mean " + " or ".join(f"`{ctx.command_path} {c}`" for c in close) + f"? {listed}"


class LazyGroup(VerbGroup):
    """Verbs are imported when used: `gpuenv plan torch` loads neither the spec model nor the engine."""

    VERBS = {
        "init": "gpuenv.cli.init:init",
        "spec": "gpuenv.cli.spec:spec",
        "plan": "gpuenv.cli.plan:plan",
        "matrix": "gpuenv.cli.matrix:matrix",
        "kb": "gpuenv.cli.kb:kb",
        "doctor": "gpuenv.cli.doctor:doctor",
        "generate": "gpuenv.cli.generate:generate",
        "build": "gpuenv.cli.up:build",
        "up": "gpuenv.cli.up:up",
        "lock": "gpuenv.cli.lock:lock",
        "verify": "gpuenv.cli.verify:verify",
        "ls": "gpuenv.cli.env:ls",
        "gpus": "gpuenv.cli.gpus:gpus",
        "status": "gpuenv.cli.env:status",
        "logs": "gpuenv.cli.env:logs",
        "shell": "gpuenv.cli.env:shell",
        "exec": "gpuenv.cli.env:exec_",
        "down": "gpuenv.cli.env:down",
        "rm": "gpuenv.cli.env:rm",
        "push": "gpuenv.cli.registry:push",
        "pull": "gpuenv.cli.registry:pull",
        "save": "gpuenv.cli.save:save",
        "load": "gpuenv.cli.load:load",
        "export": "gpuenv.cli.cluster:export",
        "submit": "gpuenv.cli.cluster:submit",
        "jobs": "gpuenv.cli.cluster:jobs",
        "cancel": "gpuenv.cli.cluster:cancel",
        "job-config": "gpuenv.cli.cluster:job_config",
        "job-ready": "gpuenv.cli.cluster:job_ready",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.VERBS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> Optional[click.Command]:
        target = self.VERBS.get(cmd_name)
        if target is None:
            return None
        return load(target)


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
    renderer = _renderer(args[: args.index("--")] if "--" in args else args)    # until own_options knows
    try:
        renderer = _renderer(own_options(args))
        result = cli.main(args=args, prog_name="gpuenv", standalone_mode=False, obj=renderer)
    except GpuenvError as exc:
        return _failed(renderer, exc)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        return renderer.error(_usage_error(exc))
    except (click.Abort, KeyboardInterrupt):
        return renderer.error(Interrupted())
    except OSError as exc:      # a file system that refused: read-only, not permitted, full
        storage = StorageError.from_os(exc, doing="use")
        return _failed(renderer, storage) if storage is not None else _internal(renderer, exc)
    except Exception as exc:  # the one catch-all: an internal error, said as such
        return _internal(renderer, exc)
    return renderer.result(result) if isinstance(result, Result) else (result or 0)


def _renderer(own: list[str]) -> Renderer:
    return Renderer(json_mode="--json" in own, debug="--debug" in own)


def own_options(args: Sequence[str]) -> list[str]:
    """The options in `args` that are gpuenv's own (where --json and --debug count): every option of the
    group and its verbs, but not a value of an option (`--name --json`), nothing after `--`, and nothing
    from the first argument of a verb that passes the rest on (`exec`: its command and that command's)."""
    own: list[str] = []
    command: click.Command = cli
    words = iter(args)
    for word in words:
        if word == "--":
            break
        if word.startswith("-") and word != "-":
            own.append(word.split("=", 1)[0])
            if _takes_value(command, word):
                next(words, None)
            continue
        if isinstance(command, click.Group):
            command = command.get_command(click.Context(command), word) or command    # a typo: read on
        elif not command.context_settings.get("allow_interspersed_args", command.allow_interspersed_args):
            break
    return own


def _takes_value(command: click.Command, word: str) -> bool:
    """Whether an option word of `command` takes the next word as its value."""
    if "=" in word:
        return False
    for param in command.params:
        if isinstance(param, click.Option) and word in param.opts + param.secondary_opts:
            return not param.is_flag and not param.count
    return False


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
