"""First start creates one key, printed once and saved 0600; the keys commands."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from service_harness import Server, Vod, anigraph, error_code, free_port

from media_factory import make_still_image


def test_default_key_created_once(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port(), ["--workers", "0"])
    server.start()
    key = server.default_key()
    assert set(key) == {"SecretId", "SecretKey", "SubAppId"}
    path = server.data_dir / "default-key.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # The database holds every SecretKey: as private as the key file, its folder too.
    assert stat.S_IMODE(server.data_dir.stat().st_mode) == 0o700
    for name in ("anigraph.db", "anigraph.db-wal", "anigraph.db-shm"):
        assert stat.S_IMODE((server.data_dir / name).stat().st_mode) == 0o600, name
    assert Vod(server, key)("DescribeAnimatedGraphicsTemplates")["TotalCount"] == 2
    server.stop()
    server.start()
    server.stop()
    assert server.log_path is not None
    assert server.log_path.read_text().count(key["SecretKey"]) == 1
    assert server.default_key() == key


def test_keys_commands(tmp_path: Path) -> None:
    data = tmp_path / "data"
    made = json.loads(
        anigraph(
            "keys", "create", "--data-dir", data, "--sub-app-id", "1500000077", "--json"
        ).stdout
    )
    assert made["SubAppId"] == 1500000077 and made["SecretId"].startswith("AKID")
    listed = json.loads(anigraph("keys", "list", "--data-dir", data, "--json").stdout)
    assert [(k["SecretId"], k["SubAppId"], k["Revoked"]) for k in listed] == [
        (made["SecretId"], 1500000077, False)
    ]
    assert made["SecretKey"] not in anigraph("keys", "list", "--data-dir", data).stdout
    anigraph("keys", "revoke", "--data-dir", data, made["SecretId"])
    again = anigraph("keys", "revoke", "--data-dir", data, made["SecretId"], check=False)
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1
    server = Server(data, free_port(), ["--workers", "0"])
    server.start()
    vod = Vod(server, made)
    assert (
        error_code(lambda: vod("DescribeAnimatedGraphicsTemplates"))
        == "AuthFailure.SecretIdNotFound"
    )
    server.stop()


def test_media_import_of_a_non_video_fails_cleanly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 100)
    done = anigraph("media", "import", junk, "--data-dir", tmp_path / "data", "--json", check=False)
    assert done.returncode == 1
    assert done.stderr.startswith("SourceFileError.ContentMalformed: ")
    files = tmp_path / "data" / "files"
    assert not files.exists() or not [p for p in files.rglob("*") if p.is_file()]


def test_media_import_of_a_still_image_fails_at_once(tmp_path: Path) -> None:
    still = make_still_image(tmp_path / "still.png")
    done = anigraph(
        "media", "import", still, "--data-dir", tmp_path / "data", "--json", check=False
    )
    assert done.returncode == 1
    assert done.stderr.startswith("SourceFileError.ContentUnsupported: ")
    assert len(done.stderr.splitlines()) == 1
