"""AVIF and MP4 outputs through the service: a task with a template of that format runs for
real (engine in the media child), and its output is what ``/files``, a CDN base and an S3
presigned link deliver: the right key suffix, content type and ``Range`` answers, and bytes
that decode (Pillow for AVIF, PyAV for MP4) into the frames the template asked for."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from anigraph.api.files import files_route
from anigraph.context import Context
from anigraph.jobs import leases
from anigraph.jobs.pool import new_owner
from anigraph.jobs.runner import Outcome, run_claimed
from anigraph.metrics import Metrics
from anigraph.services import tasks
from jobs_fixtures import (
    SUB_APP,
    add_media,
    add_task,
    add_template,
    entry,
    make_ctx,
    presigned_context,
)
from media_factory import decode_animation, make_clip

if TYPE_CHECKING:
    from storage_fixtures import S3Server

pytest_plugins = ["storage_fixtures"]

CONTENT_TYPES = {"avif": "image/avif", "mp4": "video/mp4"}
CDN = "https://cdn.example.com/anigraph"


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(
        tmp_path_factory.mktemp("formats") / "small.mp4",
        seconds=2.0,
        fps=25,
        width=160,
        height=90,
        audio=True,
    )


def run_task(ctx: Context, clip: Path, fmt: str) -> dict[str, Any]:
    """One task with one subtask of a ``fmt`` template (0.4-1.4 s at 5 fps, 129 px wide):
    its ``Output`` as DescribeTaskDetail answers it."""
    definition = add_template(ctx, format=fmt, width=129, resolution_adaptive="close")
    file_id = add_media(ctx, clip)
    task_id = add_task(ctx, file_id, [entry(definition, 0.4, 1.4)], created_at=ctx.now())
    owner = new_owner(0)
    assert leases.claim_next(ctx, owner) == task_id
    assert run_claimed(ctx, task_id, owner, Metrics()) is Outcome.FINISHED
    detail = tasks.detail(ctx, SUB_APP, task_id)["ProcedureTask"]
    output: dict[str, Any] = detail["MediaProcessResultSet"][0]["AnimatedGraphicTask"]["Output"]
    return output


def key_of(url: str, base: str) -> str:
    assert url.startswith(base)
    return url.removeprefix(base)


def check_decodes(path: Path, fmt: str, output: dict[str, Any]) -> None:
    anim = decode_animation(path)
    # 129 x 72.56: AVIF keeps odd sides, MP4 needs even ones (each rounded down).
    size = (128, 72) if fmt == "mp4" else (129, 73)
    assert (anim.width, anim.height) == (output["Width"], output["Height"]) == size
    assert len(anim.frames) == output["FrameCount"] == 5
    assert anim.durations_ms == [200] * 5
    assert anim.format == {"avif": "AVIF", "mp4": "MP4"}[fmt]


@pytest.mark.parametrize("fmt", ["avif", "mp4"])
def test_output_is_served_with_its_type_and_ranges(
    tmp_path: Path, small_clip: Path, fmt: str
) -> None:
    ctx = make_ctx(tmp_path)  # public_url http://files.test
    output = run_task(ctx, small_clip, fmt)
    assert output["Container"] == fmt
    key = key_of(output["Url"], "http://files.test/files/")
    assert key.endswith(f".{fmt}")
    # An extension format: the measured fields are on the Output (and only for such templates).
    assert output["Fps"] == pytest.approx(5.0)

    client = TestClient(Starlette(routes=[files_route(ctx.store)]))
    whole = client.get(f"/files/{key}")
    assert whole.status_code == 200
    assert whole.headers["content-type"] == CONTENT_TYPES[fmt]
    assert whole.headers["accept-ranges"] == "bytes"
    body = whole.content
    assert len(body) == output["Size"] and hashlib.md5(body).hexdigest() == output["Md5"]
    part = client.get(f"/files/{key}", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-199/{len(body)}"
    assert part.content == body[100:200]
    saved = tmp_path / f"downloaded.{fmt}"
    saved.write_bytes(body)
    check_decodes(saved, fmt, output)


@pytest.mark.parametrize("fmt", ["avif", "mp4"])
def test_cdn_link_is_base_slash_key(tmp_path: Path, small_clip: Path, fmt: str) -> None:
    ctx = make_ctx(tmp_path, files_url=CDN)
    output = run_task(ctx, small_clip, fmt)
    key = key_of(output["Url"], f"{CDN}/")
    assert key.endswith(f".{fmt}")
    obj = ctx.store.stat(key)
    assert obj is not None and obj.content_type == CONTENT_TYPES[fmt]


@pytest.mark.parametrize("fmt", ["avif", "mp4"])
def test_presigned_link_downloads_the_output_with_its_type(
    tmp_path: Path,
    small_clip: Path,
    s3_server: S3Server,
    s3_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
    fmt: str,
) -> None:
    ctx = presigned_context(tmp_path, s3_server, s3_prefix, monkeypatch)
    output = run_task(ctx, small_clip, fmt)
    url = output["Url"]
    assert url.split("?")[0].endswith(f".{fmt}")
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == CONTENT_TYPES[fmt]
    assert hashlib.md5(response.content).hexdigest() == output["Md5"]
    ranged = httpx.get(url, headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == response.content[:100]
    saved = tmp_path / f"downloaded.{fmt}"
    saved.write_bytes(response.content)
    check_decodes(saved, fmt, output)
