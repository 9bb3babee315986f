"""Serving a stored video to its owner's browser, with HTTP Range so the player can seek.

Local storage: the file is streamed by this process, one requested byte range at a time.
S3: the browser is redirected to a short-lived presigned URL and S3 answers the ranges itself."""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from typing import IO

from django.core.files.storage import default_storage
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse

from videos.models import Video

CHUNK = 256 * 1024
PRESIGNED_URL_EXPIRES_S = 300  # long enough to start playing; the player asks again on reload
_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    """The requested range lies outside the file (HTTP 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte positions, inclusive, for a single-range `Range` header.

    None means "send the whole file": no header, a malformed one, or several ranges (which a
    server may ignore, RFC 9110 14.2; browsers' media players only ask for one)."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # suffix range: the last N bytes
        length = int(last)
        if length == 0:
            raise RangeNotSatisfiable
        return max(0, size - length), size - 1
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable
    return start, end


def _read(fh: IO[bytes], start: int, length: int) -> Iterator[bytes]:
    try:
        fh.seek(start)
        while length > 0:
            chunk = fh.read(min(CHUNK, length))
            if not chunk:
                break
            length -= len(chunk)
            yield chunk
    finally:
        fh.close()


def content_type_for(video: Video) -> str:
    """Stored names have no extension (our own ids): guess from the name the user uploaded."""
    guessed, _ = mimetypes.guess_type(video.original_name)
    return guessed if guessed and guessed.startswith("video/") else "video/mp4"


def video_response(video: Video, range_header: str | None) -> HttpResponse:
    """A 200/206/416 response with the video's bytes, or a redirect to S3."""
    if not _is_local(video.file.name):
        url = default_storage.url(video.file.name, expire=PRESIGNED_URL_EXPIRES_S)
        return HttpResponseRedirect(url)
    size = default_storage.size(video.file.name)
    try:
        wanted = parse_range(range_header, size)
    except RangeNotSatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = wanted if wanted is not None else (0, size - 1)
    length = end - start + 1
    fh = default_storage.open(video.file.name, "rb")
    response = StreamingHttpResponse(
        _read(fh, start, length),
        status=206 if wanted is not None else 200,
        content_type=content_type_for(video),
    )
    response["Content-Length"] = str(length)
    response["Accept-Ranges"] = "bytes"
    if wanted is not None:
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    # The owner's private video: browsers may keep it, shared caches must not.
    response["Cache-Control"] = "private, max-age=3600"
    return response


def _is_local(name: str) -> bool:
    try:
        default_storage.path(name)
    except NotImplementedError:
        return False
    return True
