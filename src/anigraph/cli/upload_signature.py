"""``anigraph upload-signature``: make a client upload signature from the command line.

An app server normally signs in its own code (the algorithm fits in ten lines, spec 6.6); this
command is for trying the browser and mobile upload SDKs against anigraph, for shell scripts and
for checking an app server's own signatures against a known-good one. The key comes from the
data folder's default key file, a key file of the same shape, or the command line.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from anigraph.cli.upload import read_key_file
from anigraph.domain.upload_signature import (
    MAX_LIFETIME_SECONDS,
    SESSION_CONTEXT_MAX,
    SOURCE_CONTEXT_MAX,
    TASK_NOTIFY_MODES,
    TASK_PRIORITY_MAX,
    TASK_PRIORITY_MIN,
)
from anigraph.settings import DEFAULT_DATA_DIR, DEFAULT_KEY_FILE, env_name


def _read_key_file(path: Path) -> tuple[str, str]:
    data = read_key_file(path)
    return data["SecretId"], data["SecretKey"]


def _key(
    data_dir: Path | None, secret_id: str | None, secret_key: str | None, key_file: Path | None
) -> tuple[str, str]:
    """One key source only: mixing them would leave which key signed open to doubt."""
    explicit = secret_id is not None or secret_key is not None
    if sum((data_dir is not None, explicit, key_file is not None)) > 1:
        raise click.UsageError("use one of --data-dir, --secret-id/--secret-key, --key-file")
    if explicit:
        secret_key = secret_key or os.environ.get(env_name("secret_key"))
        if not secret_id or not secret_key:
            raise click.UsageError("--secret-id and --secret-key go together")
        return secret_id, secret_key
    if key_file is not None:
        return _read_key_file(key_file)
    folder = data_dir or Path(os.environ.get(env_name("data_dir"), DEFAULT_DATA_DIR))
    return _read_key_file(folder / DEFAULT_KEY_FILE)


def register(app: click.Group) -> None:
    """Add ``upload-signature`` to ``app``."""

    @app.command("upload-signature")
    @click.option("--procedure", default="", help="Task flow to run after the upload.")
    @click.option(
        "--expire-seconds",
        type=click.IntRange(1, MAX_LIFETIME_SECONDS),
        default=86400,
        show_default=True,
        help=f"Validity from now; at most {MAX_LIFETIME_SECONDS} (90 days).",
    )
    @click.option("--one-time", is_flag=True, help="Valid for one upload only (oneTimeValid=1).")
    @click.option(
        "--sub-app-id",
        type=click.IntRange(0, 2**63 - 1),
        default=None,
        help="vodSubAppId; must be the key's own sub-application.",
    )
    @click.option("--class-id", type=click.IntRange(0, 2**63 - 1), default=None)
    @click.option(
        "--task-priority", type=click.IntRange(TASK_PRIORITY_MIN, TASK_PRIORITY_MAX), default=None
    )
    @click.option("--task-notify-mode", type=click.Choice(TASK_NOTIFY_MODES), default=None)
    @click.option("--source-context", default=None, help=f"At most {SOURCE_CONTEXT_MAX} chars.")
    @click.option("--session-context", default=None, help=f"At most {SESSION_CONTEXT_MAX} chars.")
    @click.option("--storage-region", default=None)
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Sign with the folder's {DEFAULT_KEY_FILE} [env {env_name('data_dir')}; "
        f"default {DEFAULT_DATA_DIR}].",
    )
    @click.option("--secret-id", default=None, help="Sign with this key pair instead.")
    @click.option(
        "--secret-key",
        default=None,
        help=f"With --secret-id; default: env {env_name('secret_key')} (keeps it out of `ps`).",
    )
    @click.option(
        "--key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="JSON with SecretId and SecretKey (as `keys create --json` prints).",
    )
    def upload_signature(
        procedure: str,
        expire_seconds: int,
        one_time: bool,
        sub_app_id: int | None,
        class_id: int | None,
        task_priority: int | None,
        task_notify_mode: str | None,
        source_context: str | None,
        session_context: str | None,
        storage_region: str | None,
        data_dir: Path | None,
        secret_id: str | None,
        secret_key: str | None,
        key_file: Path | None,
    ) -> None:
        """Print a client upload signature for the web and mobile upload SDKs."""
        if source_context is not None and len(source_context) > SOURCE_CONTEXT_MAX:
            raise click.BadParameter(
                f"at most {SOURCE_CONTEXT_MAX} characters", param_hint="--source-context"
            )
        if session_context is not None and len(session_context) > SESSION_CONTEXT_MAX:
            raise click.BadParameter(
                f"at most {SESSION_CONTEXT_MAX} characters", param_hint="--session-context"
            )
        from anigraph.services.upload_signature import sign

        key_id, key_secret = _key(data_dir, secret_id, secret_key, key_file)
        click.echo(
            sign(
                key_id,
                key_secret,
                expire_seconds=expire_seconds,
                procedure=procedure,
                one_time=one_time,
                sub_app_id=sub_app_id,
                class_id=class_id,
                task_priority=task_priority,
                task_notify_mode=task_notify_mode,
                source_context=source_context,
                session_context=session_context,
                storage_region=storage_region,
            )
        )
