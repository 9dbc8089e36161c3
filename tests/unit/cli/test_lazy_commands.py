"""The CLI imports a command's modules only when that command runs
(``flexnet.cli.COMMAND_MODULES``): the table must name every module that adds to a
command, and a command must not pull in what others need."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import click

import flexnet.cli
from flexnet.cli import COMMAND_MODULES, cli, import_commands


def _modules_of(command: click.Command) -> set[str]:
    """The flexnet.cli.* modules whose functions make up ``command`` and its subcommands."""
    found = set()
    if command.callback is not None and command.callback.__module__ != "flexnet.cli":
        found.add(command.callback.__module__.rsplit(".", 1)[-1])
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            found |= _modules_of(sub)
    return found


def test_the_table_names_every_command_and_every_module_that_adds_to_it() -> None:
    for module in pkgutil.iter_modules(flexnet.cli.__path__):
        __import__(f"flexnet.cli.{module.name}")  # a module the table forgot registers too

    registered = {name: _modules_of(command) for name, command in cli.commands.items()}

    assert registered == {name: set(modules) for name, modules in COMMAND_MODULES.items()}


def test_the_nightly_job_starts_without_the_web_app_radius_and_migrations() -> None:
    """A fresh ``flexnet lifecycle`` process: the command is there, the rest is not loaded."""
    probe = (
        "import sys\n"
        "from flexnet.cli import cli, import_commands\n"
        "import_commands(['lifecycle'])\n"
        "assert 'run' in cli.commands['lifecycle'].commands\n"
        "print(' '.join(m for m in ('flask', 'alembic', 'flexnet.radius.server', "
        "'flexnet.cli.backup_cmds', 'flexnet.web') if m in sys.modules))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert loaded.stdout.strip() == ""


def test_help_lists_every_command() -> None:
    import_commands(COMMAND_MODULES)
    context = click.Context(cli)
    assert cli.list_commands(context) == sorted(COMMAND_MODULES)
