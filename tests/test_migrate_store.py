"""``anigraph migrate-store``: an embedded setup made by the real service, moved to SQLite and
local files (everywhere) and to PostgreSQL and S3 (real servers started by fixtures), then
served from its new place.

The source is built once per module by a real ``anigraph serve`` driven with the official SDK
and the COS SDK: templates (one deleted, so Definitions have a gap), a media item, finished tasks
with outputs (ProcessMedia with a SessionId, a task flow, an upload's flow), PULL events in the
outbox, a committed upload, a staged one and a multipart one in progress, a spent one-time
upload signature, two sub-applications with keys. Every test works on its own copy of it.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import JSON, delete, event, inspect, select
from sqlalchemy.exc import OperationalError

from anigraph.db.database import Database
from anigraph.services.upload_signature import sign
from anigraph.storage import LocalStore, Store
from anigraph.transfer.errors import TransferError
from anigraph.transfer.migration import Request, execute, prepare
from anigraph.transfer.references import NEEDED, NOT_STORE_KEYS, PROVISIONAL, key_like_columns
from anigraph.transfer.tables import schema_tables
from media_factory import make_clip
from pg_fixtures import PostgresServer, fresh_database
from pg_fixtures import postgres_server as postgres_server  # the session fixture
from service.service_harness import Server, Vod, error_code, free_port, wait_for_task

if TYPE_CHECKING:
    from storage_fixtures import S3Server

pytest_plugins = ["storage_fixtures"]

OTHER_SUB_APP = 1500000009
COUNTERS = [
    ("animated_graphics_templates", "definition"),
    ("dedupe", "id"),
    ("media_outputs", "id"),
    ("outbox_events", "id"),
    ("procedure_templates", "id"),
]
"""The autoincrement columns, each a SERIAL on PostgreSQL."""


# -- the populated source ----------------------------------------------------------------------


@dataclass(frozen=True)
class Populated:
    data_dir: Path
    clip: Path
    key: dict[str, Any]
    other_key: dict[str, Any]
    file_id: str
    task_ids: list[str]
    definition: int
    """The highest custom template Definition."""
    staged_session: str
    """An ApplyUpload whose object was uploaded but not committed."""
    multipart: dict[str, Any]
    """An ApplyUpload with a multipart upload in progress: session, upload id, part ETag."""


def cos_client(server: Server, applied: dict[str, Any]) -> Any:
    """``CosS3Client`` on a session's temporary credential, pointed at ``server``."""
    from qcloud_cos import CosConfig, CosS3Client

    certificate = applied["TempCertificate"]
    return CosS3Client(
        CosConfig(
            Region=applied["StorageRegion"],
            SecretId=certificate["SecretId"],
            SecretKey=certificate["SecretKey"],
            Token=certificate["Token"],
            Scheme="http",
            Domain=server.endpoint,
            Timeout=60,
        )
    )


def object_key(applied: dict[str, Any]) -> str:
    return str(applied["MediaStoragePath"]).lstrip("/")


def populate(folder: Path, clip: Path) -> Populated:
    server = Server(folder / "data", free_port())
    server.start()
    try:
        key = server.default_key()
        vod = Vod(server, key)
        other_key = server.create_key(OTHER_SUB_APP)
        vod("ModifyEventConfig", {"Mode": "PULL", "UploadMediaCompleteEventSwitch": "ON"})
        small = {"Format": "gif", "Fps": 5, "Width": 160}
        gone = vod("CreateAnimatedGraphicsTemplate", {**small, "Name": "gone"})["Definition"]
        kept = vod("CreateAnimatedGraphicsTemplate", {**small, "Name": "kept"})["Definition"]
        vod("DeleteAnimatedGraphicsTemplate", {"Definition": gone})
        items = [
            {"Definition": kept, "StartTimeOffset": 0, "EndTimeOffset": 1},
            {"Definition": 20001, "StartTimeOffset": 0.5, "EndTimeOffset": 1.5},
        ]
        vod(
            "CreateProcedureTemplate",
            {"Name": "gifs", "MediaProcessTask": {"AnimatedGraphicTaskSet": items[:1]}},
        )
        file_id = server.import_media(clip)
        task_set = {"AnimatedGraphicTaskSet": items}
        task_ids = [
            vod(
                "ProcessMedia",
                {"FileId": file_id, "SessionId": "before-move", "MediaProcessTask": task_set},
            )["TaskId"],
            vod("ProcessMediaByProcedure", {"FileId": file_id, "ProcedureName": "gifs"})["TaskId"],
        ]
        # A committed upload that starts the flow (NewFileUpload and task events).
        applied = vod("ApplyUpload", {"MediaType": "mp4", "Procedure": "gifs"})
        cos_client(server, applied).put_object(
            Bucket=applied["StorageBucket"], Key=object_key(applied), Body=clip.read_bytes()
        )
        committed = vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})
        (flow,) = vod("DescribeTasks", {"FileId": committed["FileId"]})["TaskSet"]
        task_ids.append(flow["TaskId"])
        # An upload whose object is staged, not committed: the commit happens after the move.
        staged = vod("ApplyUpload", {"MediaType": "mp4", "MediaName": "staged"})
        cos_client(server, staged).put_object(
            Bucket=staged["StorageBucket"], Key=object_key(staged), Body=clip.read_bytes()
        )
        # A multipart upload with one part received: completed after the move.
        parted = vod("ApplyUpload", {"MediaType": "mp4", "MediaName": "parted"})
        client = cos_client(server, parted)
        bucket, name = parted["StorageBucket"], object_key(parted)
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=name)["UploadId"]
        answer = client.upload_part(
            Bucket=bucket, Key=name, Body=clip.read_bytes(), PartNumber=1, UploadId=upload_id
        )
        # A spent one-time client signature (the upload_signature_uses table).
        signature = sign(key["SecretId"], key["SecretKey"], expire_seconds=3600, one_time=True)
        ugc = httpx.post(
            f"{server.url}/v3/index.php",
            params={"Action": "ApplyUploadUGC"},
            json={"signature": signature, "videoName": "ugc", "videoType": "mp4"},
            timeout=30,
        )
        assert ugc.json()["code"] == 0, ugc.text
        for task_id in task_ids:
            assert wait_for_task(vod, task_id)["Status"] == "FINISH"
    finally:
        assert server.stop() == 0
    return Populated(
        data_dir=server.data_dir,
        clip=clip,
        key=key,
        other_key=other_key,
        file_id=file_id,
        task_ids=task_ids,
        definition=kept,
        staged_session=staged["VodSessionKey"],
        multipart={"applied": parted, "upload_id": upload_id, "etag": answer["ETag"]},
    )


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Populated:
    folder = tmp_path_factory.mktemp("populated")
    clip = make_clip(folder / "clip.mp4", seconds=2.0, fps=25, width=320, height=180)
    return populate(folder, clip)


@pytest.fixture
def source(populated: Populated, tmp_path: Path) -> Path:
    """This test's own copy of the populated data folder."""
    return Path(shutil.copytree(populated.data_dir, tmp_path / "source"))


def test_the_source_fills_every_table(populated: Populated) -> None:
    """Otherwise the copy tests would prove less than they claim."""
    counts = dump_counts(f"sqlite:///{populated.data_dir / 'anigraph.db'}")
    assert all(counts.values()), counts


# -- helpers -----------------------------------------------------------------------------------


def migrate_store(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "anigraph", "migrate-store", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def cells(output: str) -> list[list[str]]:
    """The rows of the tables ``output`` shows (rich draws │ on UTF-8 terminals, | else)."""
    return [
        [cell.strip() for cell in line.replace("|", "│").strip().strip("│").split("│")]
        for line in output.splitlines()
        if line.replace("|", "│").startswith("│")
    ]


def dump_tables(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, by primary key; JSON columns also say whether they hold SQL
    NULL (which reads back as None, like JSON null)."""
    database = Database(url)
    try:
        dumped: dict[str, list[dict[str, Any]]] = {}
        with database.engine.connect() as connection:
            for table in schema_tables():
                flags = [
                    column.is_(None).label(f"{column.key} is null")
                    for column in table.columns
                    if isinstance(column.type, JSON)
                ]
                query = select(table, *flags).order_by(*table.primary_key.columns)
                dumped[table.name] = [dict(row._mapping) for row in connection.execute(query)]
        return dumped
    finally:
        database.dispose()


def schema_table(name: str) -> Any:
    return next(table for table in schema_tables() if table.name == name)


def dump_counts(url: str) -> dict[str, int]:
    return {name: len(rows) for name, rows in dump_tables(url).items()}


def dump_objects(store: Store) -> dict[str, tuple[int, str, str]]:
    found = {}
    for entry in store.list_objects():
        stat = store.stat(entry.key)
        assert stat is not None
        found[entry.key] = (stat.size, stat.md5, stat.content_type)
    return found


def source_urls(source: Path) -> tuple[str, LocalStore]:
    return f"sqlite:///{source / 'anigraph.db'}", LocalStore(source / "files")


def check_moved(source: Path, target_db: str, target_store: Store) -> None:
    """The target holds the source's rows and objects, exactly."""
    source_db, source_store = source_urls(source)
    assert dump_tables(target_db) == dump_tables(source_db)
    assert dump_objects(target_store) == dump_objects(source_store)


def check_service(server: Server, populated: Populated) -> None:
    """What the source served, the target serves; and new work gets fresh keys."""
    vod = Vod(server, populated.key)
    (info,) = vod("DescribeMediaInfos", {"FileIds": [populated.file_id]})["MediaInfoSet"]
    outputs = info["AnimatedGraphicsInfo"]["AnimatedGraphicsSet"]
    assert len(outputs) == 3  # ProcessMedia's two, the flow's one
    for output in outputs:
        served = httpx.get(server.url + urlsplit(output["Url"]).path, timeout=30)
        assert served.status_code == 200
        assert hashlib.md5(served.content).hexdigest() == output["Md5"]
    for task_id in populated.task_ids:
        detail = vod("DescribeTaskDetail", {"TaskId": task_id})
        assert detail["Status"] == "FINISH"
        # Links are built when read, so finished tasks' outputs point at the new place.
        for result in detail["ProcedureTask"]["MediaProcessResultSet"]:
            url = result["AnimatedGraphicTask"]["Output"]["Url"]
            assert url.startswith(f"{server.url}/files/"), url
            assert httpx.get(url, timeout=30).status_code == 200
    # The SessionId is still remembered: the same request is not run twice.
    again = {
        "FileId": populated.file_id,
        "SessionId": "before-move",
        "MediaProcessTask": {"AnimatedGraphicTaskSet": [{"Definition": 20000}]},
    }
    assert error_code(lambda: vod("ProcessMedia", again)) == "InvalidParameterValue.SessionId"
    created = vod("CreateAnimatedGraphicsTemplate", {"Format": "gif", "Fps": 2, "Name": "new"})
    assert created["Definition"] == populated.definition + 1
    # New rows in tables with counters (outputs, events, dedupe) must not collide.
    task_set = {
        "AnimatedGraphicTaskSet": [{"Definition": created["Definition"], "EndTimeOffset": 1}]
    }
    task_id = vod(
        "ProcessMedia",
        {"FileId": populated.file_id, "SessionId": "after-move", "MediaProcessTask": task_set},
    )["TaskId"]
    detail = wait_for_task(vod, task_id)
    assert detail["Status"] == "FINISH"
    (result,) = detail["ProcedureTask"]["MediaProcessResultSet"]
    assert result["AnimatedGraphicTask"]["Status"] == "SUCCESS", result
    events = vod("PullEvents")["EventSet"]
    assert {"NewFileUpload", "ProcedureStateChanged"} <= {e["EventType"] for e in events}
    assert vod("DescribeProcedureTemplates", {"Names": ["gifs"]})["TotalCount"] == 1
    # The uploads in progress finish on the target.
    committed = vod("CommitUpload", {"VodSessionKey": populated.staged_session})
    media = httpx.get(server.url + urlsplit(committed["MediaUrl"]).path, timeout=30)
    assert media.content == populated.clip.read_bytes()
    applied = populated.multipart["applied"]
    cos_client(server, applied).complete_multipart_upload(
        Bucket=applied["StorageBucket"],
        Key=object_key(applied),
        UploadId=populated.multipart["upload_id"],
        MultipartUpload={"Part": [{"PartNumber": 1, "ETag": populated.multipart["etag"]}]},
    )
    assert vod("CommitUpload", {"VodSessionKey": applied["VodSessionKey"]})["FileId"]
    # The second sub-application's key still signs in.
    other = Vod(server, populated.other_key)
    assert other("DescribeMediaInfos", {"FileIds": [populated.file_id]})["NotExistFileIdSet"]


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(data_dir: Path, *extra: str) -> Server:
        server = Server(data_dir, free_port(), extra=list(extra))
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process is not None:
            server.stop()


# -- SQLite and files to SQLite and files ------------------------------------------------------


def test_embedded_to_embedded_then_served(
    populated: Populated, source: Path, tmp_path: Path, serve: Callable[..., Server]
) -> None:
    target = tmp_path / "target"
    target_db = f"sqlite:///{target / 'anigraph.db'}"
    done = migrate_store("--data-dir", source, "--to-db", target_db, "--to-store", target / "files")
    assert done.returncode == 0, done.stderr
    assert "Moved" in done.stdout and "media_outputs" in done.stdout
    check_moved(source, target_db, LocalStore(target / "files"))
    # The new folder is a complete embedded setup: serve it with --data-dir alone.
    check_service(serve(target), populated)


def test_dry_run_writes_nothing(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    before = dump_tables(f"sqlite:///{source / 'anigraph.db'}")
    done = migrate_store(
        "--data-dir", source, "--dry-run",
        "--to-db", f"sqlite:///{target / 'anigraph.db'}", "--to-store", target / "files",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    objects = dump_objects(LocalStore(source / "files"))
    size = sum(size for size, _, _ in objects.values())
    assert f"Objects: {len(objects)} to copy" in done.stdout
    assert f"{size / 1000:.1f} kB" in done.stdout
    shown = cells(done.stdout)
    for name, rows in before.items():
        assert [name, str(len(rows)), "0"] in shown
    assert "Dry run: nothing was written." in done.stdout
    assert not target.exists()
    assert dump_tables(f"sqlite:///{source / 'anigraph.db'}") == before


def test_non_empty_target_is_refused(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target_db = f"sqlite:///{target / 'anigraph.db'}"
    args = ("--data-dir", source, "--to-db", target_db, "--to-store", target / "files")
    assert migrate_store(*args).returncode == 0
    before = dump_tables(target_db)
    message = one_line_error(migrate_store(*args))
    assert "target database is not empty" in message and "--resume" in message
    assert dump_tables(target_db) == before
    # With --resume, the same run finds everything there and changes nothing.
    again = migrate_store(*args, "--resume")
    assert again.returncode == 0, again.stderr
    check_moved(source, target_db, LocalStore(target / "files"))


class FailingStore:
    """The source store, failing like a bad disk when the ``fail_at``-th object is read."""

    def __init__(self, store: Store, fail_at: int) -> None:
        self._store = store
        self._left = fail_at

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def local_path(self, key: str) -> Path | None:
        self._left -= 1
        if self._left == 0:
            raise OSError(5, "Input/output error")
        return self._store.local_path(key)


def fail_on_second_batch(engine: Any, table: str) -> None:
    """The target database fails on the second batch of inserts into ``table``."""
    seen = []

    @event.listens_for(engine, "before_cursor_execute")
    def _fail(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith(f"INSERT INTO {table} "):
            seen.append(statement)
            if len(seen) == 2:
                raise OperationalError(statement, {}, Exception("disk I/O error"))


def test_interrupted_runs_finish_with_resume(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    source_db, source_store = source_urls(source)
    target_db = f"sqlite:///{target / 'anigraph.db'}"
    request = Request(
        source_db=source_db,
        source_store=str(source / "files"),
        target_db=target_db,
        target_store=str(target / "files"),
        batch_size=2,
        parallel=1,
    )
    # 1. A source object cannot be read: the objects before it are in place, whole.
    plan = prepare(request)
    assert plan.source_store is not None
    plan.source_store = FailingStore(plan.source_store, fail_at=4)  # type: ignore[assignment]
    with pytest.raises(TransferError, match=r"copying object .* Input/output error"):
        execute(plan)
    plan.close()
    copied = dump_objects(LocalStore(target / "files"))
    expected = dump_objects(source_store)
    assert len(copied) == 3 and copied.items() <= expected.items()
    # 2. The target database fails in the middle of media_outputs (batches of 2 of 4 rows):
    # the tables before it and the first batch are committed.
    plan = prepare(replace(request, resume=True))
    assert plan.target_db is not None
    fail_on_second_batch(plan.target_db.engine, "media_outputs")
    with pytest.raises(TransferError, match=r"media_outputs.*disk I/O error.*--resume"):
        execute(plan)
    plan.close()
    half = dump_counts(target_db)
    assert half["media_outputs"] == 2 and half["tasks"] == dump_counts(source_db)["tasks"]
    assert half["cos_upload_parts"] == 0
    # 3. Without --resume the half-filled target is refused; with it the run completes.
    refused = migrate_store(
        "--data-dir", source, "--to-db", target_db, "--to-store", target / "files"
    )
    assert "not empty" in one_line_error(refused)
    done = migrate_store(
        "--data-dir", source, "--to-db", target_db, "--to-store", target / "files", "--resume"
    )
    assert done.returncode == 0, done.stderr
    assert ["media_outputs", "4", "2", "2"] in cells(done.stdout)
    check_moved(source, target_db, LocalStore(target / "files"))


def test_resume_fills_in_what_is_missing(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target_db = f"sqlite:///{target / 'anigraph.db'}"
    args = ("--data-dir", source, "--to-db", target_db, "--to-store", target / "files")
    assert migrate_store(*args).returncode == 0
    # Take away half of the events, every received part, and two objects.
    database = Database(target_db)
    with database.engine.begin() as connection:
        events = schema_table("outbox_events")
        ids = list(connection.scalars(select(events.c.id).order_by(events.c.id)))
        connection.execute(delete(events).where(events.c.id.in_(ids[::2])))
        connection.execute(delete(schema_table("cos_upload_parts")))
    database.dispose()
    store = LocalStore(target / "files")
    for key in sorted(dump_objects(store))[:2]:
        store.delete(key)
    done = migrate_store(*args, "--resume")
    assert done.returncode == 0, done.stderr
    assert "2 to copy" in done.stdout
    check_moved(source, target_db, store)


def test_objects_made_after_the_listing_are_copied_from_the_rows(
    populated: Populated, source: Path, tmp_path: Path
) -> None:
    """A source that was not stopped adds a media item between the listing and the rows: the
    rows are the reference, so its object is copied too, and the report says so."""
    from anigraph.server import open_context
    from anigraph.services import media
    from anigraph.settings import Settings

    target = tmp_path / "target"
    target_db = f"sqlite:///{target / 'anigraph.db'}"
    plan = prepare(
        Request(
            source_db=f"sqlite:///{source / 'anigraph.db'}",
            source_store=str(source / "files"),
            target_db=target_db,
            target_store=str(target / "files"),
        )
    )
    ctx = open_context(Settings(data_dir=source))
    media.import_file(ctx, int(populated.key["SubAppId"]), populated.clip, name="late")
    ctx.db.dispose()
    report = execute(plan)
    plan.close()
    assert (report.late_objects, report.missing) == (1, [])
    check_moved(source, target_db, LocalStore(target / "files"))


def test_missing_source_object_is_reported_not_fatal(source: Path, tmp_path: Path) -> None:
    """A file lost from the old store stays lost, visibly; everything else moves."""
    database = Database(f"sqlite:///{source / 'anigraph.db'}")
    with database.engine.connect() as connection:
        lost = connection.scalar(select(schema_table("media_outputs").c.store_key).limit(1))
    database.dispose()
    assert LocalStore(source / "files").delete(lost)
    target = tmp_path / "target"
    args = ("--data-dir", source, "--to-db", f"sqlite:///{target / 'a.db'}")
    args += ("--to-store", target / "files")
    warning = (
        f"Warning: 1 object(s) the rows need are missing from the source store (first: {lost})"
    )
    dry = migrate_store(*args, "--dry-run")
    assert dry.returncode == 0 and warning in dry.stdout
    done = migrate_store(*args)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count(warning) == 2, "in the plan and in the summary"
    check_moved(source, f"sqlite:///{target / 'a.db'}", LocalStore(target / "files"))


def test_running_service_on_the_source_is_refused(
    source: Path, tmp_path: Path, serve: Callable[..., Server]
) -> None:
    server = serve(source)
    target = tmp_path / "target"
    args = ("--data-dir", source, "--to-db", f"sqlite:///{target / 'a.db'}", "--dry-run")
    message = one_line_error(migrate_store(*args))
    assert "is open in another process" in message and "stop every anigraph process" in message
    server.stop()
    assert migrate_store(*args).returncode == 0


def test_leased_task_on_the_source_is_refused(populated: Populated, source: Path) -> None:
    from anigraph.jobs import leases
    from anigraph.server import open_context
    from anigraph.settings import Settings
    from jobs_fixtures import add_task

    ctx = open_context(Settings(data_dir=source))
    add_task(ctx, populated.file_id, sub_app_id=int(populated.key["SubAppId"]))
    assert leases.claim_next(ctx, "worker-on-another-machine") is not None
    ctx.db.dispose()
    message = one_line_error(
        migrate_store("--data-dir", source, "--to-store", source.parent / "t", "--dry-run")
    )
    assert "a task is leased by a running worker until" in message


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ("--to-db|not a url", "target database URL 'not a url' is not valid"),
        ("--to-db|nosuchdb://host/x", "target database: no driver"),
        (
            "--to-db|postgresql+psycopg://anigraph:secret@127.0.0.1:1/x",
            "cannot connect to the target database postgresql+psycopg://anigraph:***@",
        ),
        ("--to-store|ftp://host/x", "unknown store scheme"),
        ("--to-store|s3://bucket?endpoint_urll=http://x", "unknown S3 store parameter"),
        ("--to-db|sqlite:///{source}/anigraph.db", "the target database is the source database"),
        ("--to-store|{source}/files/nested", "overlaps the source store"),
        ("--data-dir|{tmp}/missing|--to-store|{tmp}/t", "no source database at"),
    ],
)
def test_bad_input_is_one_line_and_a_failure(
    source: Path, tmp_path: Path, args: str, expected: str
) -> None:
    filled = [arg.format(source=source, tmp=tmp_path) for arg in args.split("|")]
    if "--data-dir" not in filled:
        filled = ["--data-dir", str(source), *filled]
    message = one_line_error(migrate_store(*filled))
    assert message.startswith("error: ") and expected in message
    assert "secret" not in message
    assert not (tmp_path / "t").exists() and not (tmp_path / "missing").exists()


def test_target_from_a_newer_anigraph_is_refused(source: Path, tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        connection.execute("INSERT INTO alembic_version VALUES ('9999')")
    done = migrate_store("--data-dir", source, "--to-db", f"sqlite:///{newer}", "--dry-run")
    assert "revision 9999, which this anigraph does not know" in one_line_error(done)


def test_nothing_to_move_is_a_usage_error(source: Path) -> None:
    done = migrate_store("--data-dir", source)
    assert done.returncode == 2
    assert "give --to-db, --to-store or both" in one_line_error(done)


def test_every_store_key_column_is_classified() -> None:
    """A new ``*_key`` column must be declared a store key (checked after a copy) or not."""
    assert not NEEDED & PROVISIONAL and not (NEEDED | PROVISIONAL) & NOT_STORE_KEYS
    assert key_like_columns(schema_tables()) == NEEDED | PROVISIONAL | NOT_STORE_KEYS


# -- SQLite and files to PostgreSQL and S3 -----------------------------------------------------


def test_embedded_to_postgres_and_s3_then_served(
    populated: Populated,
    source: Path,
    tmp_path: Path,
    postgres_server: PostgresServer,
    s3_server: S3Server,
    s3_prefix: str,
    serve: Callable[..., Server],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from anigraph.storage.s3 import S3Store

    for name, value in s3_server.credentials.items():
        monkeypatch.setenv(name, value)  # for the command and the service started below
    store_url = (
        f"s3://{s3_server.bucket}?endpoint_url={s3_server.endpoint_url}"
        f"&region={s3_server.region}&prefix={s3_prefix}"
    )
    target_store = S3Store(s3_server.bucket, prefix=s3_prefix, client=s3_server.client())
    with fresh_database(postgres_server) as target_db:
        args = ("--data-dir", source, "--to-db", target_db, "--to-store", store_url)
        dry = migrate_store(*args, "--dry-run")
        assert dry.returncode == 0, dry.stderr
        engine = Database(target_db)
        assert inspect(engine.engine).get_table_names() == [], "a dry run creates no schema"
        engine.dispose()
        assert list(target_store.list_objects()) == []

        done = migrate_store(*args)
        assert done.returncode == 0, done.stderr
        assert "Counters set to continue after the copied keys" in done.stdout
        rows = dump_tables(f"sqlite:///{source / 'anigraph.db'}")
        for table, column in COUNTERS:
            following = max(row[column] for row in rows[table]) + 1
            assert f"{table}.{column} -> {following}" in done.stdout
        check_moved(source, target_db, target_store)
        assert "not empty" in one_line_error(migrate_store(*args))
        # And back: PostgreSQL and S3 as the source (a snapshot read, objects streamed).
        back = tmp_path / "back"
        returned = migrate_store(
            "--db", target_db, "--store", store_url,
            "--to-db", f"sqlite:///{back / 'anigraph.db'}", "--to-store", back / "files",
        )  # fmt: skip
        assert returned.returncode == 0, returned.stderr
        check_moved(source, f"sqlite:///{back / 'anigraph.db'}", LocalStore(back / "files"))

        target = serve(tmp_path / "target", "--db", target_db, "--store", store_url)
        check_service(target, populated)
        assert not (tmp_path / "target" / "files").exists(), "objects live in S3 only"


def test_missing_bucket_is_one_line(
    source: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_server.credentials.items():
        monkeypatch.setenv(name, value)
    url = f"s3://no-such-bucket?endpoint_url={s3_server.endpoint_url}&region={s3_server.region}"
    message = one_line_error(migrate_store("--data-dir", source, "--to-store", url))
    assert message.startswith("error: target store S3Store('no-such-bucket'")
    assert message.endswith("the bucket does not exist")


def test_objects_only_to_s3(
    source: Path, s3_server: S3Server, s3_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--to-store alone: the database stays; the store moves, keys and bytes unchanged."""
    from anigraph.storage.s3 import S3Store

    for name, value in s3_server.credentials.items():
        monkeypatch.setenv(name, value)
    url = f"s3://{s3_server.bucket}/{s3_prefix}?endpoint_url={s3_server.endpoint_url}"
    before = dump_tables(f"sqlite:///{source / 'anigraph.db'}")
    done = migrate_store("--data-dir", source, "--to-store", url, "--parallel", "8")
    assert done.returncode == 0, done.stderr
    target = S3Store(s3_server.bucket, prefix=s3_prefix, client=s3_server.client())
    assert dump_objects(target) == dump_objects(LocalStore(source / "files"))
    assert dump_tables(f"sqlite:///{source / 'anigraph.db'}") == before
