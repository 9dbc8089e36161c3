"""``flexnet`` operations CLI. Each command is one unit of work calling the services.

These commands are a contract that operations scripts rely on. Errors are one line on
stderr (``flexnet: …``) and a non-zero exit code; nothing is changed then.
"""

from __future__ import annotations

import getpass
import importlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from functools import cached_property
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from flexnet import days
from flexnet.audit import Actor
from flexnet.clients.switch import Switch
from flexnet.config import Settings, load_settings
from flexnet.db import Database, describe_error, utcnow
from flexnet.errors import FlexnetError, PreconditionError, ValidationError
from flexnet.lifecycle.rules import BERLIN
from flexnet.ops import logsetup
from flexnet.otp.secrets import SecretBox
from flexnet.staff import accounts as staff_accounts
from flexnet.textrules import visible

# The modules whose imports register each top-level command and its subcommands. A
# command imports only these: ``flexnet lifecycle run`` (nightly) or ``flexnet practice
# show`` do not start up what the RADIUS server, the web app or backups import (about
# half of the start-up time). ``--help`` imports all. Kept complete by
# tests/unit/cli/test_lazy_commands.py.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "api-client": ("radius_cmds",),
    "audit": ("audit_cmds",),
    "backup": ("backup_cmds",),
    "db": ("instance_cmds", "backup_cmds"),
    "demo": ("radius_cmds",),
    "exception": ("lifecycle_cmds",),
    "fees": ("fees_cmds",),
    "init": ("instance_cmds",),
    "keygen": ("instance_cmds",),
    "keys": ("yubikey_cmds",),
    "letters": ("letters_cmds",),
    "lifecycle": ("lifecycle_cmds",),
    "lock": ("lifecycle_cmds",),
    "nas": ("radius_cmds",),
    "practice": (
        "edit_cmds",
        "lifecycle_cmds",
        "record_cmds",
        "takeover_cmds",
        "termination_cmds",
    ),
    "privacy": ("privacy_cmds",),
    "profile": ("radius_cmds",),
    "radius": ("radius_cmds",),
    "registry": ("registry_cmds",),
    "report": ("report_cmds",),
    "restore": ("backup_cmds",),
    "run": ("instance_cmds",),
    "serve": ("instance_cmds",),
    "staff": ("record_cmds",),
    "termination": ("termination_cmds",),
    "terms": ("record_cmds", "terms_cmds"),
    "unlock": ("lifecycle_cmds",),
    "user": ("edit_cmds", "record_cmds"),
    "wsapi-client": ("yubikey_cmds",),
    "yubikey": ("lifecycle_cmds", "yubikey_cmds"),
}


def import_commands(names: Iterable[str]) -> None:
    """Register the commands ``names`` (and their subcommands) on :data:`cli`."""
    for name in names:
        for module in COMMAND_MODULES.get(name, ()):
            importlib.import_module(f"flexnet.cli.{module}")


class FlexnetGroup(click.Group):
    """Reports every error as one line instead of a traceback or a usage dump; imports
    a command's modules when it is used (:data:`COMMAND_MODULES`)."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        import_commands([cmd_name])
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        import_commands(COMMAND_MODULES)
        return super().list_commands(ctx)

    def main(  # type: ignore[override]
        self, args: Sequence[str] | None = None, prog_name: str | None = None, **extra: Any
    ) -> Any:
        extra["standalone_mode"] = False
        if any("\x00" in argument for argument in (sys.argv[1:] if args is None else args)):
            # Nothing that holds one may reach the database (PostgreSQL refuses it).
            click.echo(
                "flexnet: Ein Argument enthält ein NUL-Zeichen (0x00); nichts geändert", err=True
            )
            sys.exit(2)
        try:
            result = super().main(args, prog_name or "flexnet", **extra)
        except click.exceptions.Abort:
            click.echo("flexnet: abgebrochen", err=True)
            sys.exit(1)
        except click.ClickException as error:
            echo_text(f"flexnet: {error.format_message()}", err=True)
            sys.exit(error.exit_code)
        except FlexnetError as error:
            echo_text(f"flexnet: {error}", err=True)
            sys.exit(1)
        except SQLAlchemyError as error:
            click.echo(
                f"flexnet: Datenbankfehler ({describe_error(error)}); "
                "ist 'flexnet db upgrade' gelaufen?",
                err=True,
            )
            sys.exit(1)
        sys.exit(result if isinstance(result, int) else 0)


class CliContext:
    """Settings and database, loaded on first use so that ``keygen`` needs neither."""

    @cached_property
    def settings(self) -> Settings:
        return load_settings()

    @cached_property
    def database(self) -> Database:
        database = Database.from_url(
            self.settings.database_url,
            timeout_ms=self.settings.db_timeout_ms,
            audit_key=self.settings.chain_key,
        )
        click.get_current_context().find_root().call_on_close(database.dispose)
        return database

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        with self.database.session() as session:
            yield session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        with self.database.reader() as session:
            yield session

    @cached_property
    def secret_box(self) -> SecretBox:
        return SecretBox(self.settings.master_key)

    # ``--as``: the staff account a change is recorded for (see :meth:`acting`).
    acting_as: str | None = None

    @cached_property
    def actor(self) -> Actor:
        """The staff member who makes this change; without one it is refused."""
        return self.acting()

    def acting(self, *, system: str | None = None) -> Actor:
        """The staff account named by ``--as`` or ``FLEXNET_ACTOR``, or else the one with
        the invoking login's name (the person behind ``sudo``). Without any, a change is
        refused, unless ``system`` names the job that may then act on its own (the nightly
        run, backups, setting up the first admin)."""
        named = self.acting_as if self.acting_as is not None else os.environ.get(ACTOR_ENV)
        login = invoking_login()
        try:
            with self.reading() as session:
                actor = staff_accounts.acting_staff(session, named=named, login=login)
        except SQLAlchemyError:
            if system is None:
                raise
            actor = None  # a restore replaces a database that may be unreadable
        if actor is not None:
            return actor
        if system is not None:
            return Actor.system(system)
        raise PreconditionError(
            f"Wer ändert? Bitte '--as MITARBEITER' angeben oder {ACTOR_ENV} setzen: "
            f"die Anmeldung {login!r} ist kein aktives Mitarbeiterkonto; nichts geändert"
        )

    def now(self) -> datetime:
        return utcnow()

    def today(self) -> date:
        """Today in Europe/Berlin, the calendar of letters and notice periods."""
        return self.now().astimezone(BERLIN).date()


pass_context = click.make_pass_decorator(CliContext, ensure=True)
ACTOR_ENV = "FLEXNET_ACTOR"


def invoking_login() -> str:
    """Who typed the command: under ``sudo -u flexnet`` the person behind sudo."""
    return os.environ.get("SUDO_USER") or getpass.getuser()


class DateType(click.ParamType[date, Any]):
    """A day, read by the same parser as the web forms and the API (range included); a
    wrong one is a ``ValidationError`` naming the option."""

    name = "JJJJ-MM-TT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        field = param.opts[0] if param is not None and param.opts else "Datum"
        if isinstance(value, date):
            return days.check_day(value, field=field)
        return days.parse_day(str(value), field=field)


DATE = DateType()


def one_of_date_or_clear(day: date | None, clear: bool) -> None:
    """``--date D`` records a day, ``--clear`` takes a recorded one back: one of them."""
    if clear == (day is not None):
        raise ValidationError("Bitte entweder --date oder --clear angeben")


def echo_text(text: str, *, err: bool = False) -> None:
    """Print a line that holds stored or typed text: a control or bidi character in it is
    shown as \\xNN, never obeyed by the terminal (a title set, the screen cleared, a
    line turned around), also for rows stored before the text rules."""
    click.echo(visible(text), err=err)


def configure_logging() -> None:
    """Log lines for servers: time, level, source, message (never a secret: see authn)."""
    logsetup.configure()


def read_password_stdin() -> str:
    """One line from standard input, without its line break; never echoed or logged."""
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise ValidationError("Auf der Standardeingabe wurde kein Kennwort übergeben")
    return line


def add_switch_commands(
    group: click.Group,
    switch: Switch,
    *,
    metavar: str,
    help_texts: tuple[str, str],
    done: tuple[str, str],
) -> None:
    """``disable`` and ``enable`` on ``group``: the same pair for every kind of client.
    ``help_texts`` and ``done`` are (disable, enable); ``done`` may name ``{name}`` and
    ``{id}`` of the client."""
    for active, command_name in ((False, "disable"), (True, "enable")):
        command = pass_context(_switch_command(switch, active=active, done=done[active]))
        command = click.argument("name", metavar=metavar)(command)
        group.command(command_name, help=help_texts[active])(command)


def _switch_command(switch: Switch, *, active: bool, done: str) -> Callable[..., None]:
    def command(ctx: CliContext, name: str) -> None:
        with ctx.unit_of_work() as session:
            client = switch(session, name=name, active=active, actor=ctx.actor, now=ctx.now())
            message = done.format(name=client.name, id=client.id)
        click.echo(message)

    return command


@click.group(cls=FlexnetGroup)
@click.version_option(package_name="flexnet", prog_name="flexnet")
@click.option(
    "--as",
    "acting_as",
    metavar="MITARBEITER",
    default=None,
    help=f"Mitarbeiterkonto, für das Änderungen protokolliert werden (sonst {ACTOR_ENV} "
    "oder das Konto mit dem Namen der Anmeldung)",
)
@click.pass_context
def cli(click_ctx: click.Context, acting_as: str | None) -> None:
    """KV-FlexNet: Verwaltung und RADIUS-Authentifizierung für den VPN-Zugang der Praxen.

    Konfiguration über FLEXNET_*-Umgebungsvariablen oder flexnet.env im Instanzordner
    (siehe README). Änderungen brauchen ein aktives Mitarbeiterkonto (--as).
    """
    click_ctx.ensure_object(CliContext).acting_as = acting_as


def main() -> None:
    cli.main()
