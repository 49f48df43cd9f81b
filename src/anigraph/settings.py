"""Every setting of the service, declared once: name, type, default and help.

A value comes from, in order of precedence: a command-line flag, the environment
(``ANIGRAPH_<NAME>``), a TOML file (``--config``, keys as the field names), the default.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def _setting(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


DEFAULT_DATA_DIR = Path("anigraph-data")
DEFAULT_WORKER_SLOTS = 2
DEFAULT_KEY_FILE = "default-key.json"  # written 0600 into the data folder on first start


@dataclass(frozen=True)
class Settings:
    data_dir: Path = _setting(DEFAULT_DATA_DIR, "Folder for the database, files and keys.")  # noqa: RUF009
    host: str = _setting("127.0.0.1", "Address to listen on.")
    port: int = _setting(8080, "Port to listen on.")
    db: str = _setting("", "Database URL; default: SQLite in the data folder.")
    queue: str = _setting(
        "", "Job transport: redis://host:port/0 sends wake-ups through Celery; default: in-process."
    )
    store: str = _setting(
        "", "Blob store: a path or s3://bucket?endpoint_url=…&region=…; default: the data folder."
    )
    public_url: str = _setting("", "Base URL of output links; default: http://HOST:PORT.")
    files_url: str = _setting(
        "",
        "Where output links point: empty for this service's /files/KEY, a base URL "
        "(https://cdn.example.com/prefix: base/KEY) or 'presigned' (S3 presigned GET URLs).",
    )
    presign_seconds: int = _setting(
        86400, "Lifetime of presigned output links, 1 to 604800 (7 days, S3's limit)."
    )
    workers: int = _setting(
        -1,
        "Worker slots per process (0: API only); default: 2, but `serve` with a queue runs the "
        "API only (workers run elsewhere).",
    )
    idle_poll_seconds: float = _setting(
        0.25, "How often an idle worker slot looks for WAITING tasks it was not woken for."
    )
    lease_seconds: float = _setting(
        30.0, "How long a claimed task stays owned without a heartbeat."
    )
    task_deadline_seconds: float = _setting(900.0, "Wall-time limit of one media job.")
    sweep_seconds: float = _setting(
        600.0,
        "How often worker processes remove what killed writes left (store temp files, staging "
        "scratch, unfinished S3 multipart uploads) once idle for the task deadline plus 10 "
        "minutes; 0: never.",
    )
    max_attempts: int = _setting(3, "Attempts for a subtask that fails transiently.")
    retry_backoff_seconds: float = _setting(5.0, "First retry delay; doubles each attempt.")
    max_body_bytes: int = _setting(1024 * 1024, "Largest API request body.")
    max_source_pixels: int = _setting(4096 * 4096, "Largest source frame, in pixels.")
    max_output_bytes: int = _setting(256 * 1024 * 1024, "Largest output file.")
    max_segment_seconds: float = _setting(600.0, "Longest segment a task may convert.")
    max_frames: int = _setting(3000, "Most output frames per animated image.")
    max_upload_bytes: int = _setting(5 * 1024**3, "Largest uploaded object.")
    allow_private_networks: str = _setting(
        "",
        "CIDRs (comma-separated) that outgoing fetches and callbacks may reach; none by default.",
    )
    max_fetch_bytes: int = _setting(2 * 1024**3, "Largest media fetched from a URL.")
    fetch_timeout_seconds: float = _setting(
        600.0,
        "Wall-time limit of one whole URL fetch (a file, or an HLS playlist and all its "
        "segments); a slower source fails the task as DownloadNotAccessible, not retried.",
    )
    fetch_stall_seconds: float = _setting(
        60.0,
        "Longest silence from a URL source before its fetch fails as too slow (not retried).",
    )
    event_retry_seconds: float = _setting(5.0, "First retry delay of a failed callback; doubles.")
    event_give_up_seconds: float = _setting(
        3600.0, "Callbacks failing this long become dead letters."
    )
    event_timeout_seconds: float = _setting(
        10.0, "Wall-time limit of one callback POST; slower counts as a failed attempt."
    )
    log_level: str = _setting("info", "Log level: debug, info, warning, error.")

    def __post_init__(self) -> None:
        # Here rather than at first use: a bad link mode would otherwise surface as broken Urls
        # in responses long after start, or as one failing request per output.
        _check_files_url(self.files_url, self.store, self.presign_seconds)

    @property
    def worker_slots(self) -> int:
        """``workers`` as given, or the default of a process that runs workers."""
        return self.workers if self.workers >= 0 else DEFAULT_WORKER_SLOTS

    @property
    def serve_slots(self) -> int:
        """Slots `serve` runs beside the API: none by default once a queue is set, because the
        workers of a scaled-out setup run on their own machines."""
        if self.workers < 0 and self.queue:
            return 0
        return self.worker_slots

    @property
    def store_url(self) -> str:
        """``store``, or the data folder's ``files`` (the embedded default)."""
        return self.store or str(self.data_dir / "files")

    @property
    def database_url(self) -> str:
        return self.db or f"sqlite:///{(self.data_dir / 'anigraph.db').resolve()}"

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


PRESIGNED = "presigned"
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs live at most 7 days


def _check_files_url(files_url: str, store: str, presign_seconds: int) -> None:
    if not 1 <= presign_seconds <= MAX_PRESIGN_SECONDS:
        raise ValueError(f"presign_seconds must be 1 to {MAX_PRESIGN_SECONDS}")
    if files_url == PRESIGNED:
        if not store.lower().startswith("s3://"):
            raise ValueError(
                "files_url 'presigned' needs an S3 store (--store s3://bucket?…); "
                "local files have no presigned URLs"
            )
        return
    if files_url:
        parts = urlsplit(files_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"files_url must be empty, 'presigned' or an http(s):// base URL, not {files_url!r}"
            )
        if parts.query or parts.fragment or "?" in files_url or "#" in files_url:
            raise ValueError("files_url must not have a ?query or #fragment (keys follow it)")


def env_name(name: str) -> str:
    return f"ANIGRAPH_{name.upper()}"


def _convert(kind: Any, value: Any) -> Any:
    kind = {"Path": Path, "int": int, "float": float, "str": str}.get(str(kind), kind)
    return kind(value)


def load(overrides: dict[str, Any] | None = None, config: Path | None = None) -> Settings:
    """Settings from flags (``overrides``; ``None`` = not given), env, TOML, then defaults."""
    values: dict[str, Any] = {}
    known = {f.name: f for f in fields(Settings)}
    if config is not None:
        with config.open("rb") as handle:
            for key, value in tomllib.load(handle).items():
                if key not in known:
                    raise ValueError(f"unknown setting {key!r} in {config}")
                values[key] = value
    for name in known:
        if env_name(name) in os.environ:
            values[name] = os.environ[env_name(name)]
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    converted = {}
    for name, value in values.items():
        try:
            converted[name] = _convert(known[name].type, value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"setting {name}: {value!r} is not a valid value") from exc
    return replace(Settings(), **converted)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def example_toml(width: int = 96) -> str:
    """A ``--config`` file with every setting at its default, each under its help as a comment:
    generated from the declarations above, so the documented example cannot go stale."""
    import textwrap

    lines = [
        "# anigraph settings (anigraph serve --config anigraph.toml). Every key is optional; the",
        "# values below are the defaults. A flag or an ANIGRAPH_<NAME> variable overrides a key.",
    ]
    for spec in fields(Settings):
        lines.append("")
        help_text = str(spec.metadata["help"])
        lines += textwrap.wrap(help_text, width - 2, initial_indent="# ", subsequent_indent="# ")
        lines.append(f"# env {env_name(spec.name)}")
        lines.append(f"{spec.name} = {_toml_value(spec.default)}")
    return "\n".join(lines) + "\n"
