"""A minimal app server for index.html: it serves the page and makes upload signatures.

This is what your own web application does: it keeps the API key (the browser never sees it)
and hands each signed-in user a short-lived signature, computed with Tencent's algorithm
(https://cloud.tencent.com/document/product/266/9221): base64(HMAC-SHA1(SecretKey, query) +
query). Only the standard library is used.

    python examples/browser-upload/app.py          # then open http://127.0.0.1:8000/

anigraph's address comes from the same settings as `anigraph serve` (ANIGRAPH_PORT,
ANIGRAPH_HOST, ANIGRAPH_PUBLIC_URL) or --anigraph; the key from
$ANIGRAPH_DATA_DIR/default-key.json or --key-file.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
SIGNATURE_SECONDS = 600


def upload_signature(secret_id: str, secret_key: str, procedure: str = "") -> str:
    now = int(time.time())
    fields = {
        "secretId": secret_id,
        "currentTimeStamp": now,
        "expireTime": now + SIGNATURE_SECONDS,
        "random": secrets.randbelow(2**31),
        "oneTimeValid": 1,
    }
    if procedure:
        fields["procedure"] = procedure
    query = urlencode(fields).encode()
    digest = hmac.new(secret_key.encode(), query, hashlib.sha1).digest()
    return base64.b64encode(digest + query).decode()


def default_anigraph_url() -> str:
    if os.environ.get("ANIGRAPH_PUBLIC_URL"):
        return os.environ["ANIGRAPH_PUBLIC_URL"].rstrip("/")
    host = os.environ.get("ANIGRAPH_HOST", "127.0.0.1")
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"http://{host}:{os.environ.get('ANIGRAPH_PORT', '8080')}"


class Handler(SimpleHTTPRequestHandler):
    key: dict[str, str]
    procedure: str
    anigraph_url: str
    sdk: Path

    def do_GET(self) -> None:
        if self.path == "/signature":
            # A real app checks here that the user is signed in and may upload.
            signature = upload_signature(
                self.key["SecretId"], self.key["SecretKey"], self.procedure
            )
            self._json({"signature": signature})
        elif self.path == "/config.json":
            self._json({"anigraphUrl": self.anigraph_url})
        elif self.path == "/vod-js-sdk-v6.js":
            self._file(self.sdk, "text/javascript")
        elif self.path in ("/", "/index.html", "/anigraph-hosts.js"):
            super().do_GET()
        else:
            self.send_error(404)

    def _json(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _file(self, path: Path, content_type: str) -> None:
        if not path.is_file():
            self.send_error(404, f"{path} not found: npm install vod-js-sdk-v6, see README.md")
            return
        data = path.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000, help="this server's port (8000)")
    parser.add_argument("--anigraph", default=default_anigraph_url(), help="anigraph's base URL")
    data_dir = Path(os.environ.get("ANIGRAPH_DATA_DIR", "anigraph-data"))
    parser.add_argument("--key-file", type=Path, default=data_dir / "default-key.json")
    parser.add_argument("--procedure", default="", help="a task flow to run on each upload")
    parser.add_argument(
        "--sdk",
        type=Path,
        default=HERE / "node_modules" / "vod-js-sdk-v6" / "dist" / "vod-js-sdk-v6.js",
        help="vod-js-sdk-v6's browser bundle",
    )
    args = parser.parse_args()
    key = json.loads(args.key_file.read_text())
    Handler.key, Handler.procedure, Handler.anigraph_url, Handler.sdk = (
        key,
        args.procedure,
        args.anigraph.rstrip("/"),
        args.sdk,
    )
    server = ThreadingHTTPServer(("127.0.0.1", args.port), partial(Handler, directory=str(HERE)))
    print(f"open http://127.0.0.1:{args.port}/ (uploads go to {Handler.anigraph_url})", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
