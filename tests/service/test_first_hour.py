"""A newcomer's first hour with a real server: the README's SDK script, a browser at the root,
and a restart that says where the default key is."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
from PIL import Image
from service_harness import PROXY_VARIABLES, Server, free_port

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_python_block(marker: str) -> str:
    """The README's ```python block that contains ``marker``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)
    (block,) = [b for b in blocks if marker in b]
    return str(block)


def run_python(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` as a user's shell runs it: no proxy variables, ``env`` added."""
    clean = {k: v for k, v in os.environ.items() if k not in PROXY_VARIABLES}
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_readme_sdk_script_prints_the_output_url(
    server: Server, file_id: str, tmp_path: Path
) -> None:
    script = readme_python_block("DescribeTaskDetailRequest")
    assert "8080" not in script.replace('"8080")', ""), "the port must come from ANIGRAPH_PORT"
    done = run_python(
        ["-c", script],
        tmp_path,
        ANIGRAPH_PORT=str(server.port),
        ANIGRAPH_DATA_DIR=str(server.data_dir),
        FILE_ID=file_id,
    )
    assert done.returncode == 0, done.stderr
    (url,) = done.stdout.split()
    assert url.startswith(f"{server.url}/files/") and url.endswith(".gif")
    answer = httpx.get(url)
    assert answer.status_code == 200
    (tmp_path / "out.gif").write_bytes(answer.content)
    with Image.open(tmp_path / "out.gif") as image:
        assert image.format == "GIF" and image.size == (320, 180)


def test_a_browser_at_the_root_is_sent_to_the_console(server: Server) -> None:
    html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    visit = httpx.get(f"{server.url}/", headers={"Accept": html})
    assert visit.status_code == 303 and visit.headers["location"] == "/console"
    # API clients get the API's answer, as before: no Accept: text/html, or API parameters.
    for answer in (
        httpx.get(f"{server.url}/"),
        httpx.get(f"{server.url}/?Action=DescribeTasks", headers={"Accept": html}),
        httpx.post(f"{server.url}/", headers={"Accept": html}, content=b"{}"),
    ):
        assert answer.status_code == 200
        assert answer.json()["Response"]["Error"]["Code"].startswith("AuthFailure")


def test_a_restart_says_where_the_default_key_is(tmp_path: Path) -> None:
    server = Server(tmp_path / "data", free_port())
    server.start()
    server.stop()
    assert server.log_path is not None
    first = server.log_path.read_text()
    assert "SecretKey:" in first and "Default API key: in" not in first
    server.start()
    server.stop()
    again = server.log_path.read_text()[len(first) :]
    key_file = (tmp_path / "data" / "default-key.json").resolve()
    assert f"Default API key: in {key_file} (mode 0600)" in again
    assert "SecretKey" not in again
    assert f"Console: http://127.0.0.1:{server.port}/console" in again


def test_upload_finds_the_server_from_the_serve_settings(
    server: Server, short_clip: Path, tmp_path: Path
) -> None:
    """No --endpoint: ANIGRAPH_PORT (or --port), as `serve` was started, not a fixed 8080."""
    data = str(server.data_dir)
    upload = ["-m", "anigraph", "upload", str(short_clip)]
    by_env = run_python(
        [*upload, "--json"], tmp_path, ANIGRAPH_DATA_DIR=data, ANIGRAPH_PORT=str(server.port)
    )
    assert by_env.returncode == 0, by_env.stderr
    assert '"FileId"' in by_env.stdout
    by_flag = run_python([*upload, "--port", str(server.port)], tmp_path, ANIGRAPH_DATA_DIR=data)
    assert by_flag.returncode == 0, by_flag.stderr
    assert by_flag.stdout.startswith("FileId: ")


def test_endpoint_of_the_serve_settings() -> None:
    from anigraph.cli.upload import endpoint_of
    from anigraph.settings import Settings

    assert endpoint_of(Settings()) == "127.0.0.1:8080"
    assert endpoint_of(Settings(host="0.0.0.0", port=9000)) == "127.0.0.1:9000"
    assert endpoint_of(Settings(host="::1", port=9000)) == "[::1]:9000"
    proxied = Settings(port=9000, public_url="https://vod.example.com")
    assert endpoint_of(proxied) == "https://vod.example.com"
