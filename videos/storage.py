"""Reading stored videos as local files, wherever the storage backend keeps them."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from django.core.files.storage import default_storage

CHUNK = 1024 * 1024


@contextmanager
def local_copy(name: str) -> Iterator[Path]:
    """A local path for a stored file: the file itself on disk storage, a temp copy from S3."""
    try:
        on_disk = Path(default_storage.path(name))
    except NotImplementedError:
        on_disk = None  # remote storage (S3): stream it down to a temp file
    if on_disk is not None:
        yield on_disk
        return
    with tempfile.TemporaryDirectory(prefix="video-") as tmp:
        target = Path(tmp) / "source"
        with default_storage.open(name, "rb") as src, target.open("wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK)
        yield target


def copy_and_hash(src: IO[bytes], dst: IO[bytes], limit: int) -> tuple[int, str]:
    """Copy a stream, returning (bytes, sha256); stops reading once past `limit` bytes."""
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(CHUNK):
        size += len(chunk)
        if size > limit:
            break
        digest.update(chunk)
        dst.write(chunk)
    return size, digest.hexdigest()


def s3_client():
    """The boto3 client behind django-storages' S3 backend (None on local storage)."""
    connection = getattr(default_storage, "connection", None)
    return connection.meta.client if connection is not None else None


def direct_upload_origin() -> str | None:
    """Where the browser sends a direct upload (the presigned POST's scheme://host), for the
    upload page's Content-Security-Policy; None on local storage. Computed offline by boto3."""
    from urllib.parse import urlsplit

    client = s3_client()
    if client is None:
        return None
    url = client.generate_presigned_post(Bucket=default_storage.bucket_name, Key="probe")["url"]
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
