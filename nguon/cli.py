"""The ``nguon`` command: ``db``, ``users``, ``tokens``, ``demo`` and Flask's own ``run``.

Each command is one transaction (:func:`nguon.db.commit_boundary`): it commits when it
succeeds and changes nothing when it fails. Errors go to stderr with exit status 1.
"""

from __future__ import annotations

import functools
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import current_app, g
from flask.cli import FlaskGroup, with_appcontext

from nguon.config import ConfigError
from nguon.errors import DomainValidationError
from nguon.inputs import is_digits


def _create_app() -> Any:
    from nguon.app import create_app

    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"Configuration error: {exc}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main() -> None:
    """Nguồn: IP registry and traceability service."""


PACKAGE_COMMANDS = ("registry.cli", "traceability.cli", "integrations.cli")


def _register_package_commands() -> None:
    """Each domain package adds its own group (imported here, at the composition root)."""
    import importlib

    for module in PACKAGE_COMMANDS:
        importlib.import_module(module)


def transactional(command: Callable[..., Any]) -> Callable[..., Any]:
    """Run the command in an app context as one transaction, audited as the OS user."""

    @functools.wraps(command)
    @with_appcontext
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from nguon.db import commit_boundary

        command_path = click.get_current_context().command_path
        g.audit_actor = f"cli:{_os_user()} ({command_path})"
        try:
            with commit_boundary():
                return command(*args, **kwargs)
        except DomainValidationError as exc:
            raise click.ClickException(exc.detail) from None

    return wrapper


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


# --- db -----------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema migrations (Alembic)."""


def _alembic(fn: str, *args: Any, **kwargs: Any) -> None:
    from alembic import command

    from nguon.migrate import alembic_config

    getattr(command, fn)(alembic_config(current_app.config["DATABASE_URL"]), *args, **kwargs)


@db.command()
@click.argument("revision", default="head")
@with_appcontext
def upgrade(revision: str) -> None:
    """Upgrade the schema to REVISION (default: the latest)."""
    _alembic("upgrade", revision)


@db.command()
@click.argument("revision", default="-1")
@with_appcontext
def downgrade(revision: str) -> None:
    """Downgrade the schema to REVISION (default: one step back)."""
    _alembic("downgrade", revision)


@db.command()
@with_appcontext
def current() -> None:
    """Show the schema's current revision."""
    _alembic("current", verbose=True)


@db.command()
@with_appcontext
def history() -> None:
    """List the migrations."""
    _alembic("history")


@db.command()
@click.option("-m", "--message", required=True, help="What the migration does.")
@click.option("--autogenerate/--empty", default=True, help="Compare models with the schema.")
@with_appcontext
def revision(message: str, autogenerate: bool) -> None:
    """Write a new migration file (date-prefixed) under migrations/versions."""
    _alembic("revision", message=message, autogenerate=autogenerate)


# --- users and tokens ------------------------------------------------------------------


@main.group()
def users() -> None:
    """User accounts."""


@users.command("create")
@click.argument("email")
@click.option("--role", required=True, type=click.Choice(["admin", "officer", "cooperative"]))
@click.option("--org", "org_id", type=int, help="Organisation id (cooperative users only).")
@click.option("--name", default="", help="Display name.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@transactional
def create_user(email: str, role: str, org_id: int | None, name: str, password_stdin: bool) -> None:
    """Create a user. Without --password-stdin you are prompted for the password."""
    from nguon import services

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = services.create_user(email, role, password=password, organisation_id=org_id, name=name)
    click.echo(f"created user {user.id} {user.email} ({user.role})", err=True)


@users.command("list")
@transactional
def list_users() -> None:
    """List users: id, email, role, organisation, active."""
    from sqlalchemy import select

    from nguon.db import db as database
    from nguon.models import User

    for user in database.session.scalars(select(User).order_by(User.id)):
        org = user.organisation_id or "-"
        state = "active" if user.active else "disabled"
        click.echo(f"{user.id}\t{user.email}\t{user.role}\t{org}\t{state}")


@users.command("set-password")
@click.argument("user")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@transactional
def set_password(user: str, password_stdin: bool) -> None:
    """Set USER's password (email or id) and lift any lockout."""
    from nguon import services

    account = _user_or_fail(user)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    services.set_password(account, password)
    click.echo(f"password set for {account.email}", err=True)


@users.command("disable")
@click.argument("user")
@transactional
def disable_user(user: str) -> None:
    """Disable USER: no more sign-ins and no more token use."""
    account = _user_or_fail(user)
    account.active = False
    click.echo(f"disabled {account.email}", err=True)


def _user_or_fail(email_or_id: str) -> Any:
    from nguon import services

    user = services.find_user(email_or_id)
    if user is None:
        raise click.ClickException(f"no user {email_or_id!r}")
    return user


@main.group()
def tokens() -> None:
    """API tokens for machine clients."""


@tokens.command("create")
@click.argument("email")
@click.option("--name", required=True, help="What the token is for, e.g. 'erp-sync'.")
@transactional
def create_token(email: str, name: str) -> None:
    """Issue a token for EMAIL. Prints the token, and nothing else, on stdout."""
    from nguon import services

    issued = services.create_token(_user_or_fail(email), name)
    click.echo(issued.secret)
    click.echo(f"token {issued.token.id} ({issued.token.key_id}) created; store it now", err=True)


@tokens.command("revoke")
@click.argument("token")
@click.option("--user", "email", help="With a token NAME: whose token it is.")
@transactional
def revoke_token(token: str, email: str | None) -> None:
    """Revoke TOKEN: its id, key id, the whole token, or its name with --user."""
    from sqlalchemy import select

    from nguon import services
    from nguon.db import db as database
    from nguon.models import ApiToken

    query = select(ApiToken)
    if email:
        query = query.where(
            ApiToken.user_id == _user_or_fail(email).id,
            ApiToken.name == token,
            ApiToken.revoked_at.is_(None),
        )
    elif is_digits(token, 9):
        query = query.where(ApiToken.id == int(token))
    else:
        key_id = token.split("_")[1] if token.startswith("ngn_") else token
        query = query.where(ApiToken.key_id == key_id)
    found = database.session.scalars(query).all()
    if len(found) != 1:
        raise click.ClickException(f"no single token matches {token!r}")
    services.revoke_token(found[0])
    click.echo(f"revoked token {found[0].id} ({found[0].name})", err=True)


@tokens.command("list")
@click.argument("email")
@transactional
def list_tokens(email: str) -> None:
    """List EMAIL's tokens: id, key id, name, created, last used, revoked."""
    from nguon import services

    for t in services.tokens_of(_user_or_fail(email)):
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "active"
        used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "-"
        click.echo(f"{t.id}\t{t.key_id}\t{t.name}\t{t.created_at:%Y-%m-%d %H:%M}\t{used}\t{state}")


# --- demo -----------------------------------------------------------------------------------


@main.group()
def demo() -> None:
    """Demonstration data (clearly marked as such)."""


@demo.command("load")
@click.option("--data", "data_path", type=click.Path(dir_okay=False), help="Asset list JSON.")
@transactional
def load_demo(data_path: str | None) -> None:
    """Load the demo: organisations and one user per role (idempotent)."""
    from nguon.demo import load

    load(data_path, echo=click.echo)


_register_package_commands()
