"""Build a ``Store`` from the one string an operator types (``--store``, ``ANIGRAPH_STORE``).

Accepted forms:

- ``/var/lib/anigraph/files``, ``./files`` or ``local:///var/lib/anigraph/files``: a
  ``LocalStore`` (the embedded default);
- ``s3://bucket?endpoint_url=http://minio:9000&region=us-east-1&prefix=anigraph``: an
  ``S3Store``. ``endpoint`` is accepted as a synonym of ``endpoint_url``; a path after the
  bucket (``s3://bucket/anigraph``) is the prefix too. Credentials never go in the URL (it ends
  up in logs, process lists and config dumps): they come from boto3's standard chain
  (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles).

Anything unknown is refused with ``ValueError`` rather than ignored, so a typo in a parameter
name cannot silently send objects to AWS instead of the intended server.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from anigraph.storage.base import Store
from anigraph.storage.local import LocalStore

__all__ = ["local_store_path", "parse_store_url"]

_S3_PARAMS = {"endpoint_url": "endpoint_url", "endpoint": "endpoint_url", "region": "region"}


def parse_store_url(url: str) -> Store:
    """The store that ``url`` names; see the module docstring for the syntax."""
    folder = local_store_path(url)
    if folder is not None:
        return LocalStore(folder)
    return _s3(url)


def local_store_path(url: str) -> Path | None:
    """The folder a local store URL names, or ``None`` for an S3 URL; ``ValueError`` otherwise.

    Nothing is created, unlike ``LocalStore(…)``: a dry run can tell whether the folder exists.
    """
    if not url:
        raise ValueError("store URL must not be empty")
    scheme, sep, _ = url.partition("://")
    if not sep:
        return Path(url).expanduser()
    scheme = scheme.lower()
    if scheme == "local":
        return _local(url)
    if scheme == "s3":
        return None
    raise ValueError(f"unknown store scheme {scheme!r} (use a path, local:///path or s3://bucket)")


def _local(url: str) -> Path:
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise ValueError("local store URL must look like local:///absolute/path")
    path = unquote(parts.path)
    if not path:
        raise ValueError("local store URL needs a path: local:///absolute/path")
    return Path(path)


def _s3(url: str) -> Store:
    parts = urlsplit(url)
    if "@" in parts.netloc:
        raise ValueError("put S3 credentials in the environment (AWS_ACCESS_KEY_ID…), not the URL")
    if parts.fragment:
        raise ValueError("S3 store URL must not have a #fragment")
    bucket = parts.netloc
    if not bucket:
        raise ValueError("S3 store URL needs a bucket: s3://bucket?endpoint_url=…")
    options: dict[str, str] = {}
    prefix = unquote(parts.path).strip("/")
    for name, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if name == "prefix":
            if prefix and value.strip("/") != prefix:
                raise ValueError("S3 prefix given both as a path and as ?prefix=")
            prefix = value.strip("/")
            continue
        target = _S3_PARAMS.get(name)
        if target is None:
            raise ValueError(
                f"unknown S3 store parameter {name!r} (known: endpoint_url, region, prefix)"
            )
        if target in options:
            raise ValueError(f"S3 store parameter {name!r} given twice")
        if not value:
            raise ValueError(f"S3 store parameter {name!r} is empty")
        options[target] = value
    endpoint_url = options.get("endpoint_url")
    if endpoint_url is not None and urlsplit(endpoint_url).scheme not in ("http", "https"):
        raise ValueError("endpoint_url must be an http:// or https:// URL")

    # Imported here so that a local-only deployment does not pay for importing boto3.
    from anigraph.storage.s3 import S3Store

    return S3Store(bucket, endpoint_url=endpoint_url, region=options.get("region"), prefix=prefix)
