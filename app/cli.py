"""CLI commands (`flask --app app ...` or the `shortener` console script): db upgrade|status,
create-admin, create-user, issue-key, prune-clicks, import, export, stats."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click
from flask import Flask, current_app
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from app import migrate
from app.api.schemas import IGNORED_COLUMNS, parse_import_row  # the API's field rules, for rows too
from app.db import db, utcnow
from app.errors import AppError
from app.models import User
from app.services import api_keys, clicks, imports, links, stats, users
from app.services.api_keys import Principal

if TYPE_CHECKING:  # rich is imported by the commands that print: ~1.5 MiB in every server process
    from rich.progress import Progress
    from rich.table import Table

# What an import reads (an export's created_at and click_count are for people, and ignored).
IMPORT_COLUMNS = (
    "url",
    "alias",
    "title",
    "expires_at",
    "max_clicks",
    "redirect_type",
    "owner_id",
    "state",
    "is_active",
)
# The CLI is trusted like an admin: it sees every link.
CLI_PRINCIPAL = Principal(user_id=0, role="admin", key_id=0)
SHOWN_REJECTIONS = 20


def register(app: Flask) -> None:
    """Attach the project's commands to the app's CLI."""
    group = AppGroup("db", help="Database schema migrations.")

    @group.command("upgrade")
    def upgrade() -> None:
        """Apply every pending migration."""
        applied = migrate.upgrade(db.obj)
        click.echo(f"applied: {', '.join(applied)}" if applied else "schema is up to date")

    @group.command("status")
    def status() -> None:
        """List pending migrations; exit 1 when some are pending."""
        waiting = migrate.pending(db.obj)
        click.echo(f"pending: {', '.join(waiting)}" if waiting else "schema is up to date")
        if waiting:
            raise SystemExit(1)

    app.cli.add_command(group)

    @app.cli.command("create-admin")
    @click.argument("name")
    def create_admin(name: str) -> None:
        """Create an admin user and print its first API key (shown once)."""
        user, secret = users.create_admin(name)
        click.echo(f"admin {user.name!r} (id {user.id}) created; API key (store it now, it is shown once):")
        click.echo(secret)

    @app.cli.command("create-user")
    @click.argument("name")
    @click.option("--role", type=click.Choice(["user", "admin"]), default="user")
    def create_user(name: str, role: str) -> None:
        """Create a user (no key; see issue-key)."""
        user = users.create_user(None, name, role)
        click.echo(f"user {user.name!r} (id {user.id}, {user.role}) created")

    @app.cli.command("prune-clicks")
    @click.option(
        "--days", type=click.IntRange(min=1), required=True, help="Keep this many days of raw clicks."
    )
    def prune_clicks(days: int) -> None:
        """Delete raw click rows older than DAYS days (statistics come from rollups and are kept)."""
        deleted = clicks.prune_clicks(utcnow() - timedelta(days=days))
        click.echo(f"deleted {deleted} raw clicks older than {days} days")

    @app.cli.command("issue-key")
    @click.argument("name")
    @click.option("--label", default="issued by the CLI")
    def issue_key(name: str, label: str) -> None:
        """Issue a new API key for the user NAME and print it (shown once)."""
        user = User.get_or_none(User.name == name)
        if user is None:
            raise click.ClickException(f"no user named {name!r}")
        _key, secret = api_keys.create_key(user.id, name=label)
        click.echo(secret)

    app.cli.add_command(import_links)
    app.cli.add_command(export_links)
    app.cli.add_command(link_stats)


@click.command("import")
@with_appcontext
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--owner",
    "owner_id",
    type=click.IntRange(min=1),
    help="Id of the user who owns every imported link (whatever owner_id a row names).",
)
@click.option(
    "--keep-owners",
    is_flag=True,
    help="Create a row naming an owner_id under that user (rejected when no such user exists).",
)
@click.option(
    "--format", "file_format", type=click.Choice(["auto", "csv", "json"]), default="auto", show_default=True
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the rejected rows, with their reason, to this CSV file (fix it and import it again).",
)
@click.option("--batch-size", type=click.IntRange(1, 2000), default=imports.BATCH_SIZE, show_default=True)
def import_links(
    path: Path,
    owner_id: int | None,
    keep_owners: bool,
    file_format: str,
    rejects: Path | None,
    batch_size: int,
) -> None:
    """Import links from PATH: CSV with a header row, or a JSON array of objects.

    Columns: url (required), alias, title, expires_at, max_clicks, redirect_type, and an export's
    owner_id, state (or is_active). Rows are checked like API requests; a dead row (state inactive,
    expired or exhausted, or is_active false) is created deactivated; a row naming an owner needs
    --keep-owners or --owner. Bad rows are reported and skipped, rows already imported left alone.
    """
    if owner_id is not None and keep_owners:
        raise click.UsageError("--owner and --keep-owners exclude each other")
    kind = file_format if file_format != "auto" else ("json" if path.suffix.lower() == ".json" else "csv")
    total, rows = _read_json(path) if kind == "json" else _read_csv(path)
    started = time.perf_counter()
    with _progress() as progress, _as_click_errors():
        task = progress.add_task("importing", total=total)
        summary = imports.import_links(
            rows,
            current_app.extensions["settings"],
            parse_import_row,
            owner_id=owner_id,
            keep_owners=keep_owners,
            batch_size=batch_size,
            on_progress=lambda done: progress.advance(task, done),
        )
    _print_summary(summary, time.perf_counter() - started)
    if rejects is not None:
        _write_rejects(rejects, summary.rejected)
        click.echo(f"rejected rows written to {rejects}")


@contextmanager
def _as_click_errors() -> Iterator[None]:
    """A service's refusal (no such link, no such owner) as a one-line CLI error, not a traceback."""
    try:
        yield
    except AppError as error:
        raise click.ClickException(error.message) from None


def _progress() -> Progress:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )


def _read_csv(path: Path) -> tuple[int, Iterator[dict[str, Any]]]:
    """The number of data rows and an iterator over them (streamed; the header is checked first)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        total = sum(1 for _ in reader)
    if not header or "url" not in header:
        raise click.ClickException(f"{path}: the first row must be a header naming the columns, with url")
    unknown = [name for name in header if name not in IMPORT_COLUMNS and name not in IGNORED_COLUMNS]
    if unknown:
        raise click.ClickException(
            f"{path}: unknown column(s) {', '.join(map(repr, unknown))}; known: {', '.join(IMPORT_COLUMNS)}"
        )

    def rows() -> Iterator[dict[str, Any]]:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle, restkey="(extra cells)"):
                # Cells an export escaped against spreadsheet formulas ("'=...") read as written.
                yield {name: imports.from_csv_cell(value) for name, value in row.items()}

    return total, rows()


def _read_json(path: Path) -> tuple[int, list[Any]]:
    try:
        with path.open(encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise click.ClickException(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, list):
        raise click.ClickException(f"{path}: expected a JSON array of objects")
    return len(data), data


def _print_summary(summary: imports.ImportSummary, seconds: float) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title="Import summary")
    for name in ("rows", "created", "already present", "rejected", "seconds", "rows/s"):
        table.add_column(name, justify="right")
    rate = summary.total / seconds if seconds > 0 else 0
    table.add_row(
        *map(str, (summary.total, summary.created, summary.present, len(summary.rejected))),
        f"{seconds:.2f}",
        f"{rate:,.0f}",
    )
    console.print(table)
    if summary.rejected:
        console.print(_rejection_table(summary.rejected))


def _rejection_table(rejected: list[imports.Rejection]) -> Table:
    from rich.table import Table

    table = Table(title=f"Rejected rows ({len(rejected)}; by reason, first example shown)")
    for name in ("reason code", "rows", "first row", "reason"):
        table.add_column(name, overflow="fold")
    for code, count, first in imports.summarize_rejections(rejected):
        table.add_row(code, str(count), str(first.row), first.reason)
    return table


def _write_rejects(path: Path, rejected: list[imports.Rejection]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["row", "error", "reason", *IMPORT_COLUMNS])
        writer.writeheader()
        writer.writerows(_reject_row(rejection) for rejection in rejected)


def _reject_row(rejection: imports.Rejection) -> dict[str, Any]:
    data = rejection.data if isinstance(rejection.data, Mapping) else {"url": json.dumps(rejection.data)}
    return {
        "row": rejection.row,
        "error": rejection.code,
        "reason": imports.csv_cell(rejection.reason),
        **{name: _cell(data.get(name)) for name in IMPORT_COLUMNS},
    }


def _cell(value: Any) -> Any:
    """A rejected row's value as a CSV cell (escaped against spreadsheet formulas, like an export)."""
    return imports.csv_cell(json.dumps(value) if isinstance(value, dict | list) else value)


@click.command("export")
@with_appcontext
@click.option("--format", "file_format", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.File("w", encoding="utf-8", lazy=True), default="-")
def export_links(file_format: str, output: IO[str]) -> None:
    """Write every link that is not deleted (oldest first) as CSV or JSON; the file imports back.

    CSV cells that a spreadsheet would run as a formula (starting with = + - @, a tab or CR) are
    prefixed with a ' (taken off again by import).
    """
    rows = imports.export_rows()
    count = _write_json(output, rows) if file_format == "json" else _write_csv(output, rows)
    click.echo(f"exported {count} links", err=True)


def _write_csv(output: IO[str], rows: Iterable[dict[str, Any]]) -> int:
    writer = csv.DictWriter(output, fieldnames=imports.EXPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for count, row in enumerate(rows, start=1):  # noqa: B007 (the count is the result)
        writer.writerow({name: imports.csv_cell(value) for name, value in row.items()})
    return count


def _write_json(output: IO[str], rows: Iterable[dict[str, Any]]) -> int:
    output.write("[")
    count = 0
    for count, row in enumerate(rows, start=1):
        output.write(("\n" if count == 1 else ",\n") + json.dumps(row, ensure_ascii=False))
    output.write("\n]\n")
    return count


@click.command("stats")
@with_appcontext
@click.argument("code")
@click.option("--days", type=click.IntRange(1, 366), default=7, show_default=True)
def link_stats(code: str, days: int) -> None:
    """Show a link's totals and its clicks per day over the last DAYS days (UTC)."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    span = stats.window(today - timedelta(days=days - 1), None, "day")
    with _as_click_errors():
        link, report = stats.link_report(code, CLI_PRINCIPAL, span)
    from rich.console import Console

    console = Console()
    console.print(f"[bold]{link.code}[/bold] → {link.target_url}  ({links.link_state(link)})")
    console.print(
        f"all time: {link.click_count} clicks, {link.human_click_count} by people; "
        f"created {link.created_at:%Y-%m-%d %H:%M} UTC"
    )
    totals = report["totals"]
    console.print(
        f"last {days} days: {totals['clicks']} clicks, {totals['human_clicks']} by people, "
        f"{totals['bot_clicks']} by bots, {totals['unique_visitors']} unique visitors"
    )
    console.print(_series_table(report["series"]))


def _series_table(series: list[dict[str, Any]]) -> Table:
    from rich.table import Table

    table = Table()
    for name in ("day (UTC)", "clicks", "by people"):
        table.add_column(name, justify="right")
    for point in series:
        table.add_row(point["start"][:10], str(point["clicks"]), str(point["human_clicks"]))
    return table


def _app_from_environment() -> Flask:
    """The app the `shortener` console script runs commands on: .env and the environment, like run.py."""
    from app import create_app
    from app.bootstrap import settings_from_env_or_exit

    return create_app(settings_from_env_or_exit())


# The `shortener` console script: the same commands as `flask --app app`, with the app built from the
# environment. Tests invoke it with `obj=ScriptInfo(create_app=...)` to run it on their own app.
main = FlaskGroup(
    name="shortener",
    help="Manage the URL shortener: database, users and keys, bulk import/export, link stats.",
    create_app=_app_from_environment,
    add_default_commands=False,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
)
