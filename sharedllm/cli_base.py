"""What the three programs share, on click: one group shape, commands that import their
libraries only when they run, shell completion, confirmations, and errors as one line.

Exit codes (docs/CLI.md): 0 done; 1 the command failed, ``error: [CODE] message``;
2 the command line was wrong, ``error: [USAGE] ...``; 130 interrupted.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any

import click
from click.shell_completion import get_completion_class

from sharedllm import __version__
from sharedllm.errors import ConfigError, SharedLLMError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

SHELLS = ("bash", "zsh", "fish")
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class Args(SimpleNamespace):
    """A command's options and arguments by name (dashes as underscores), with what the
    program hands every command: ``argv``, the words it was started with, and a test's
    fault points (``faults``), set only by ``sharedllm.testing``."""

    json: bool = False


class Exclusive(click.Option):
    """An option that may not be given together with the options named in ``excludes``."""

    def __init__(self, *decls: str, excludes: Sequence[str] = (), **attrs: Any) -> None:
        super().__init__(decls, **attrs)
        self.excludes = tuple(excludes)

    def handle_parse_result(
        self, ctx: click.Context, opts: Any, args: list[str]
    ) -> tuple[Any, list[str]]:
        clash = [name for name in self.excludes if name in opts]
        if self.name in opts and clash:
            other = "--" + clash[0].replace("_", "-")
            raise click.UsageError(f"{self.opts[0]} and {other} exclude each other", ctx)
        return super().handle_parse_result(ctx, opts, args)


def option(*decls: str, **attrs: Any) -> click.Option:
    """A click option whose help shows its default when it has one worth showing."""
    default = attrs.get("default")
    attrs.setdefault("show_default", not (default is None or default is False or default == ()))
    return click.Option(decls, **attrs)


def flag(*decls: str, help: str, **attrs: Any) -> click.Option:
    return click.Option(decls, is_flag=True, default=False, help=help, **attrs)


def argument(name: str, **attrs: Any) -> click.Argument:
    return click.Argument([name], **attrs)


def json_flag(help: str = "print machine-readable JSON") -> click.Option:
    return flag("--json", help=help)


def yes_flag() -> click.Option:
    return flag("--yes", "-y", help="do not ask for confirmation")


def program(name: str, help: str) -> Program:
    """The group of one program: ``--version``, ``-h``, and ``completion SHELL``."""
    group = Program(name, help=help, context_settings=CONTEXT, no_args_is_help=True)
    click.version_option(__version__, "--version", prog_name=name, message="%(prog)s %(version)s")(
        group
    )
    group.add_command(_completion_command(name))
    return group


def _completion_command(prog: str) -> click.Command:
    var = "_" + prog.replace("-", "_").upper() + "_COMPLETE"
    lines = {
        "bash": f'eval "$({prog} completion bash)"   # in ~/.bashrc',
        "zsh": f'eval "$({prog} completion zsh)"    # in ~/.zshrc',
        "fish": f"{prog} completion fish | source   # in ~/.config/fish/config.fish",
    }

    @click.command(
        "completion",
        context_settings=CONTEXT,
        short_help="Print the shell completion script for bash, zsh or fish",
        help=f"Print the {prog} completion script for SHELL; install it with one line:\n\n"
        + "\n\n".join(f"\b\n{line}" for line in lines.values()),
    )
    @click.argument("shell", type=click.Choice(SHELLS))
    @click.pass_context
    def completion(ctx: click.Context, shell: str) -> None:
        root = ctx.find_root()
        script = get_completion_class(shell)(root.command, {}, prog, var)  # type: ignore[misc]
        click.echo(script.source())

    return completion


def command(
    name: str, target: str, help: str, params: Sequence[click.Parameter], **settings: Any
) -> click.Command:
    """A click command that runs ``module:function`` with the command's ``Args``; the
    module is imported only when the command runs, so that building the program and its
    ``--help`` stays free of torch, web3 and eth-account, whose imports cost seconds.
    ``help``'s first paragraph is the command's line in its group's list."""

    return click.Command(
        name,
        callback=runs(target),
        params=list(params),
        help=help,
        short_help=help.partition("\n\n")[0].rstrip("."),
        context_settings=CONTEXT | settings.pop("context_settings", {}),
        **settings,
    )


def runs(target: str) -> Callable[..., int | None]:
    """A click callback that imports and runs ``module:function`` with the command's Args;
    a group's runs only when no subcommand was given."""

    @click.pass_context
    def callback(ctx: click.Context, /, **_: Any) -> int | None:
        if ctx.invoked_subcommand is not None:
            return None
        module, function = target.split(":")
        return invoke(ctx, getattr(importlib.import_module(module), function))

    return callback


def invoke(ctx: click.Context, function: Callable[[Args], int | None]) -> int:
    """Run ``function`` with the command's Args; a SharedLLMError becomes one line (JSON on
    stderr with ``--json``) and exit status 1."""
    args = collect_args(ctx)
    try:
        return int(function(args) or 0)
    except SharedLLMError as exc:
        if args.json:
            print(json.dumps({"error": exc.to_json()}), file=sys.stderr, flush=True)
        else:
            print(f"error: {exc}", file=sys.stderr, flush=True)
        return EXIT_FAILED


def collect_args(ctx: click.Context) -> Args:
    """The parameters of the command and of its groups, the command's own winning where it
    gave one (``serve --keys A keys list`` reads A), and what the program hands in."""
    chain = []
    at: click.Context | None = ctx
    while at is not None:
        chain.append(at)
        at = at.parent
    values: dict[str, Any] = {}
    for level in reversed(chain):
        for key, value in level.params.items():
            if key not in values or value not in (None, False, ()):
                values[key] = value
    return Args(**(ctx.find_root().obj or {}), **values)


class Program(click.Group):
    """A program's root group, whose ``main`` keeps the program's rules: errors as one line
    and the documented exit codes, returned with ``standalone_mode=False`` and the
    process's status otherwise (as under click's test runner)."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> int:
        words = list(sys.argv[1:] if args is None else args)
        extra["obj"] = {"argv": words, **(extra.get("obj") or {})}
        status = self._status(words, prog_name or self.name, complete_var, extra)
        if standalone_mode:
            sys.exit(status)
        return status

    def _status(
        self, words: list[str], prog: str | None, complete_var: str | None, extra: Any
    ) -> int:
        try:
            status = super().main(words, prog, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else "", err=True)
            return EXIT_USAGE
        except click.UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            click.echo(f"error: [USAGE] {exc.format_message()}{where}", err=True)
            return EXIT_USAGE
        except click.ClickException as exc:
            click.echo(f"error: [USAGE] {exc.format_message()}", err=True)
            return exc.exit_code
        except click.Abort:
            click.echo("interrupted", err=True)
            return EXIT_INTERRUPTED
        return int(status or 0)


def run(group: click.Group, argv: Sequence[str] | None, **handed: Any) -> int:
    """Run the program on ``argv`` (default: the process's) and return its exit status;
    ``handed`` reaches every command's Args (a test's fault points)."""
    status: int = group.main(argv, group.name, standalone_mode=False, obj=handed)
    return status


def entry(main: Callable[[Sequence[str] | None], int]) -> Callable[[], None]:
    """A console script: the program's exit status becomes the process's."""
    return lambda: sys.exit(main(None))


def confirm(args: Args, question: str, *, action: str) -> None:
    """Ask ``question`` on a terminal unless ``--yes``; a "no" is ``[CANCELLED]`` and
    nothing is sent. Without a terminal the action goes ahead, as it did before it asked,
    with a note that scripts should pass ``--yes``."""
    if getattr(args, "yes", False):
        return
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        print(
            f"note: {action} asks for confirmation on a terminal; pass --yes in scripts "
            "(a later version will require it without a terminal)",
            file=sys.stderr,
            flush=True,
        )
        return
    if not click.confirm(question, default=False, err=True):
        raise ConfigError(f"{action}: cancelled, nothing was sent", code="CANCELLED")


def prompt_secret(label: str, *, repeat: bool = False) -> str:
    """A hidden prompt on the terminal (``repeat``: typed twice, for a new secret)."""
    value: str = click.prompt(
        label,
        hide_input=True,
        confirmation_prompt=repeat,
        err=True,
        default="",
        show_default=False,
    )
    return value


def ready_line(
    subject: str, fields: dict[str, Any], *, as_json: bool, kind: str | None = None
) -> str:
    """What a service prints once it serves: ``ready [KIND] SUBJECT k=v ...``, or with
    ``--json`` one object, ``{"ready": SUBJECT, "kind": KIND, "k": v, ...}``."""
    if as_json:
        return json.dumps({"ready": subject, **({"kind": kind} if kind else {}), **fields})
    head = " ".join(word for word in ("ready", kind, subject) if word)
    return " ".join([head, *(f"{k}={v}" for k, v in fields.items() if v is not None)])


def format_size(size: int) -> str:
    """``812 B``, ``12.4 MiB``, ``1.3 GiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Where a person waits: a bar on a terminal, a plain line per step elsewhere (a log, a
    pipe, a test), so that output read later still says what happened when."""

    def __init__(self, label: str, total: int, *, stream: Any = None) -> None:
        self.label, self.total = label, max(1, total)
        self.stream = stream or sys.stderr
        self._bar: Any = None
        if self.stream.isatty():
            self._bar = click.progressbar(
                length=self.total,
                label=label,
                file=self.stream,
                show_eta=True,
                item_show_func=lambda note: note,
            )
            self._bar.__enter__()
        self._done = 0
        self._ended = False

    def step(self, done: int, note: str) -> None:
        """``done`` of ``total`` so far; ``note`` says what the step was. The bar ends at
        the total (what is printed next starts on a line of its own); steps after it,
        while a wait makes sure, show nothing more."""
        done = min(max(done, self._done), self.total)
        if self._bar is not None:
            self._bar.update(done - self._done, note)
        elif not self._ended:
            print(f"{self.label}: {note}", file=self.stream, flush=True)
        self._done = done
        if done >= self.total and self._bar is not None:
            self.close()
            self._ended = True

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
