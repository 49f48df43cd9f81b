"""``anigraph upload FILE``: upload a media file to a running anigraph, as any SDK user would.

The command is a client, built only on Tencent's official libraries, so it is also a working
example of the server-side upload flow (spec 6.1) against anigraph:

1. ``ApplyUpload`` with ``tencentcloud-sdk-python-vod`` pointed at the endpoint;
2. the object with ``cos-python-sdk-v5``: ``CosConfig(Domain=<endpoint>, Scheme=...)`` and the
   temporary credential ApplyUpload returned; ``upload_file`` goes multipart, in parallel, above
   one part (``--part-size``);
3. ``CommitUpload``; with ``--procedure``, the task flow's TaskId is looked up with
   ``DescribeTasks(FileId=...)`` (CommitUpload's response model has no member for it).

Failures print one line on stderr and exit with status 1.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import click

from anigraph.cli.shared import settings_from, settings_options
from anigraph.settings import DEFAULT_DATA_DIR, DEFAULT_KEY_FILE, Settings, env_name

"""The key file ``anigraph serve`` writes into the data folder on first start."""
SERVER_SETTINGS = ("host", "port", "public_url")
"""The settings `serve` listens and links by, which tell a client where the server is."""


class UploadFailed(Exception):
    """A failure to report in one line."""


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message.splitlines()[0] if message else 'upload failed'}", err=True)
    sys.exit(1)


def _endpoint(value: str) -> tuple[str, str]:
    """(scheme, host:port) from ``host:port`` or ``http(s)://host:port``: the SDK wants them apart
    (a scheme inside its endpoint would be sent and signed as part of the Host header)."""
    text = value.strip().rstrip("/")
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        raise click.UsageError(f"--endpoint must be host:port or http(s)://host:port, not {value}")
    return parts.scheme, parts.netloc


def endpoint_of(settings: Settings) -> str:
    """Where the server configured by ``settings`` is reached: ``public_url`` when set (a proxy in
    front of it), else ``host:port``, with a wildcard listen address read as this machine."""
    if settings.public_url:
        return settings.public_url
    host = settings.host
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"{host}:{settings.port}"


def read_key_file(path: Path) -> dict[str, Any]:
    try:
        data: Any = json.loads(path.read_text())
    except OSError as exc:
        raise click.UsageError(f"cannot read key file {path}: {exc.strerror}") from None
    except ValueError:
        raise click.UsageError(f"key file {path} is not JSON") from None
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("SecretId"), str)
        or not isinstance(data.get("SecretKey"), str)
    ):
        raise click.UsageError(f"key file {path} has no SecretId and SecretKey")
    return data


def _key(
    secret_id: str | None, secret_key: str | None, key_file: Path | None, data_dir: Path | None
) -> tuple[str, str, int | None]:
    """(SecretId, SecretKey, the key file's SubAppId): from the flags, a key file, or the data
    folder's default key file. One source only, so which key signed is never in doubt."""
    explicit = secret_id is not None or secret_key is not None
    if sum((explicit, key_file is not None, data_dir is not None)) > 1:
        raise click.UsageError("use one of --secret-id/--secret-key, --key-file, --data-dir")
    if explicit:
        secret_key = secret_key or os.environ.get(env_name("secret_key"))
        if not secret_id or not secret_key:
            raise click.UsageError("--secret-id and --secret-key go together")
        return secret_id, secret_key, None
    if key_file is None:
        folder = data_dir or Path(os.environ.get(env_name("data_dir"), DEFAULT_DATA_DIR))
        key_file = folder / DEFAULT_KEY_FILE
    data = read_key_file(key_file)
    sub_app_id = data.get("SubAppId")
    return data["SecretId"], data["SecretKey"], sub_app_id if isinstance(sub_app_id, int) else None


def upload(
    path: Path,
    *,
    endpoint: str,
    secret_id: str,
    secret_key: str,
    sub_app_id: int | None = None,
    procedure: str = "",
    media_name: str | None = None,
    media_type: str | None = None,
    part_size_mb: int = 8,
    threads: int = 4,
) -> dict[str, Any]:
    """ApplyUpload, COS upload, CommitUpload; returns FileId, MediaUrl (and ProcedureTaskId)."""
    from qcloud_cos import CosConfig, CosS3Client
    from qcloud_cos.cos_exception import CosClientError, CosServiceError
    from tencentcloud.common.credential import Credential
    from tencentcloud.common.exception.tencent_cloud_sdk_exception import (
        TencentCloudSDKException,
    )
    from tencentcloud.common.profile.client_profile import ClientProfile
    from tencentcloud.common.profile.http_profile import HttpProfile
    from tencentcloud.vod.v20180717 import models, vod_client

    scheme, host = _endpoint(endpoint)
    client = vod_client.VodClient(
        Credential(secret_id, secret_key),
        "",
        ClientProfile(httpProfile=HttpProfile(endpoint=host, protocol=scheme)),
    )
    kind = (media_type or path.suffix).lower().removeprefix(".")
    if not kind:
        raise UploadFailed(f"cannot tell the media type of {path.name}; give --media-type")

    def call(action: str, params: dict[str, Any]) -> dict[str, Any]:
        request = getattr(models, f"{action}Request")()
        request.from_json_string(json.dumps(params))
        try:
            response = getattr(client, action)(request)
        except TencentCloudSDKException as exc:
            raise UploadFailed(f"{action}: {exc.code}: {exc.message}") from None
        return dict(json.loads(response.to_json_string()))

    common: dict[str, Any] = {} if sub_app_id is None else {"SubAppId": sub_app_id}
    applied = call(
        "ApplyUpload",
        {
            **common,
            "MediaType": kind,
            "MediaName": path.stem if media_name is None else media_name,
            **({"Procedure": procedure} if procedure else {}),
        },
    )
    certificate = applied.get("TempCertificate") or {}
    cos = CosS3Client(
        CosConfig(
            Region=applied["StorageRegion"],
            SecretId=certificate.get("SecretId") or secret_id,
            SecretKey=certificate.get("SecretKey") or secret_key,
            Token=certificate.get("Token") or None,
            Scheme=scheme,
            Domain=host,
        )
    )
    try:
        cos.upload_file(
            Bucket=applied["StorageBucket"],
            Key=applied["MediaStoragePath"][1:],
            LocalFilePath=str(path),
            PartSize=part_size_mb,
            MAXThread=threads,
        )
    except CosServiceError as exc:
        raise UploadFailed(
            f"object upload: {exc.get_error_code()}: {exc.get_error_msg()}"
        ) from None
    except CosClientError as exc:
        raise UploadFailed(f"object upload: {exc}") from None
    committed = call("CommitUpload", {**common, "VodSessionKey": applied["VodSessionKey"]})
    result: dict[str, Any] = {"FileId": committed["FileId"], "MediaUrl": committed["MediaUrl"]}
    if procedure:
        found = call("DescribeTasks", {**common, "FileId": committed["FileId"], "Limit": 1})
        tasks = found.get("TaskSet") or []
        result["ProcedureTaskId"] = tasks[0]["TaskId"] if tasks else ""
    return result


def register(app: click.Group) -> None:
    """Add ``upload`` to ``app``."""

    @app.command("upload")
    @click.argument(
        "file", type=click.Path(exists=True, dir_okay=False, readable=True, path_type=Path)
    )
    @click.option("--procedure", default="", help="Task flow to run on the new media item.")
    @click.option("--name", "media_name", default=None, help="Media name; default: file stem.")
    @click.option("--media-type", default=None, help="Extension, e.g. mp4; default: FILE's.")
    @click.option(
        "--endpoint",
        default=None,
        help="host:port of the anigraph API (http://, or https://host:port); default: the "
        "server the settings below describe, as `serve` reads them (public_url, else "
        "host:port: 127.0.0.1:8080).",
    )
    @click.option("--secret-id", default=None, help="Sign with this key pair.")
    @click.option(
        "--secret-key",
        default=None,
        help=f"With --secret-id; default: env {env_name('secret_key')} (keeps it out of `ps`).",
    )
    @click.option(
        "--key-file",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help=f"JSON with SecretId, SecretKey [default: DATA_DIR/{DEFAULT_KEY_FILE}].",
    )
    @click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=f"Use the folder's {DEFAULT_KEY_FILE} [env {env_name('data_dir')}; "
        f"default {DEFAULT_DATA_DIR}].",
    )
    @click.option("--sub-app-id", type=click.IntRange(1, 2**63 - 1), default=None)
    @click.option(
        "--part-size",
        type=click.IntRange(1, 5 * 1024),
        default=8,
        show_default=True,
        help="MiB per part; larger files go multipart.",
    )
    @click.option("--threads", type=click.IntRange(1, 32), default=4, show_default=True)
    @click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
    @settings_options(SERVER_SETTINGS)
    def upload_command(
        file: Path,
        procedure: str,
        media_name: str | None,
        media_type: str | None,
        endpoint: str | None,
        secret_id: str | None,
        secret_key: str | None,
        key_file: Path | None,
        data_dir: Path | None,
        sub_app_id: int | None,
        part_size: int,
        threads: int,
        as_json: bool,
        **options: Any,
    ) -> None:
        """Upload FILE as a new media item (ApplyUpload, COS upload, CommitUpload).

        The server is found from the settings `anigraph serve` uses (flags, ANIGRAPH_PORT,
        ANIGRAPH_HOST, ANIGRAPH_PUBLIC_URL, --config), unless --endpoint names it.
        """
        key_id, key_secret, key_sub_app = _key(secret_id, secret_key, key_file, data_dir)
        server = settings_from(options)
        try:
            result = upload(
                file,
                endpoint=endpoint or endpoint_of(server),
                secret_id=key_id,
                secret_key=key_secret,
                sub_app_id=sub_app_id if sub_app_id is not None else key_sub_app,
                procedure=procedure,
                media_name=media_name,
                media_type=media_type,
                part_size_mb=part_size,
                threads=threads,
            )
        except UploadFailed as exc:
            _fail(str(exc))
        except Exception as exc:  # network errors and the like: one line, not a traceback
            _fail(f"{type(exc).__name__}: {exc}")
        if as_json:
            click.echo(json.dumps(result))
            return
        for name, value in result.items():
            click.echo(f"{name}: {value}")
