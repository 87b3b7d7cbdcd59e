"""`claimcoder dev up | status | down`: the local stack of real servers."""

import typer
from rich.table import Table

from worker.cli.common import err, fail, load_settings, out
from worker.localstack import LocalStack, LocalStackError, redacted

app = typer.Typer(help="Local Tansu, PostgreSQL and Redis for development.", no_args_is_help=True)


def _stack() -> LocalStack:
    return LocalStack(load_settings().state_dir)


def _print_status(stack: LocalStack) -> bool:
    table = Table("service", "origin", "url", "pid", "status")
    table.columns[2].overflow = "fold"
    all_ok = True
    for s in stack.status():
        all_ok &= s.answering
        table.add_row(
            s.service.name,
            s.service.origin,
            redacted(s.service.url),
            str(s.service.pid or "-"),
            "[green]answering[/green]" if s.answering else f"[red]{s.detail}[/red]",
        )
    err.print(table)
    # Export lines go to stdout, so that `eval "$(claimcoder dev status)"` works.
    for line in stack.export_lines():
        out.print(line)
    return all_ok


@app.command()
def up() -> None:
    """Start the servers not given by URL and not already running (idempotent)."""
    stack = _stack()
    try:
        stack.up()
    except LocalStackError as exc:
        fail(str(exc))
    if not _print_status(stack):
        raise typer.Exit(1)


@app.command()
def status() -> None:
    """Show what runs where, and print the export lines to use."""
    stack = _stack()
    if not stack.services():
        err.print("nothing is running; start it with: claimcoder dev up")
        raise typer.Exit(1)
    if not _print_status(stack):
        raise typer.Exit(1)


@app.command()
def down() -> None:
    """Stop the servers `dev up` started, by pid; servers given by URL are left alone."""
    stopped = _stack().down()
    for s in stopped:
        err.print(f"stopped {s.name} (pid {s.pid})")
    if not stopped:
        err.print("nothing to stop")
