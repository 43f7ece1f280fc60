"""The ``lamina`` Typer app and the error contract every command runs under."""

from __future__ import annotations

import functools
import logging
import os
import sys
from typing import Any, Callable

import typer

app = typer.Typer(
    help="Lamina: from raw data to a trained, evaluated deep network.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
)


def _setup_logging() -> None:
    from lamina.logs import tidy

    logger = logging.getLogger("lamina")
    if not logger.handlers:
        handler = tidy(logging.StreamHandler(sys.stderr))
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def command(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command with Lamina's error contract: bad input → one line on stderr and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = kwargs.get("ctx")
        debug = bool(ctx is not None and ctx.obj and ctx.obj.get("debug"))
        _setup_logging()
        from lamina.errors import LaminaError

        try:
            result = fn(*args, **kwargs)
            sys.stdout.flush()  # here, so a closed pipe is met while its error can still be handled
            return result
        except BrokenPipeError:
            # The reader went away (`lamina predict ... | head -1`): end quietly, as Unix tools do, with the status
            # a SIGPIPE gives; stdout goes to /dev/null so the interpreter's last flush cannot fail again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise typer.Exit(128 + 13) from None
        except LaminaError as e:
            if debug:
                raise
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            if debug:
                raise
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as e:  # a bug in Lamina, not the user's fault: say so, keep the traceback behind --debug
            if debug:
                raise
            typer.echo(f"internal error: {type(e).__name__}: {e} (run with --debug for the traceback, and report it)", err=True)
            raise typer.Exit(1) from None

    return wrapper


@app.callback()
def main_options(ctx: typer.Context, debug: bool = typer.Option(False, "--debug", help="Show full tracebacks.")) -> None:
    ctx.obj = {"debug": debug}
