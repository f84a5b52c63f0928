"""Recordings and artifacts over HTTP: a source's recorded segments, and the files themselves
under `/artifacts/` (token required like `/api/`, see app.before_request), with their MIME type,
HTTP Range (a browser can seek), HEAD and conditional GET (ETag, Last-Modified).

A file body has no response timeout (Quart's default would cut a download after 60 s, however
fast it goes), and a suffix range longer than the file is the whole file (RFC 9110 14.1.3).

A URL maps to exactly one root, so no URL reaches outside the recording directories:
- `/artifacts/recordings/<source-id>/<file>` -> `<that source's record.dir>/<source-id>/<file>`
  (continuous recording, workers/recording/segments.py);
- `/artifacts/<rest>` -> `<media.recordDir>/<rest>` (snapshots, clips).
Anything else (`..`, dot files, absolute paths, symlinks leading out of the root, directories,
unknown file types) is a JSON 404.

The segment list comes from the worker's index next to the segments (protocol/recordings.py);
sizes come from the files themselves.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from quart import Blueprint, Response, request
from quart.wrappers.response import FileBody
from werkzeug.http import http_date, parse_range_header
from werkzeug.sansio.http import is_resource_modified

from api.context import settings, source_or_404
from api.responses import error_response, json_response
from protocol.config import Settings, SourceSettings
from protocol.recordings import RecordingItem, current_segments

bp = Blueprint("artifacts", __name__)

RECORDINGS = "recordings"
MIME_TYPES = {".mp4": "video/mp4", ".m4a": "audio/mp4", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
              ".png": "image/png", ".webp": "image/webp", ".json": "application/json"}
CHUNK_BYTES = 256 * 1024
_HEADERS = {"Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff", "Accept-Ranges": "bytes"}


def _not_found(detail: str = "no such artifact") -> Response:
    return error_response(404, "not_found", detail)


def recording_dir(src: SourceSettings) -> Path:
    return Path(src.record.dir or settings().record_dir) / src.id


def _safe_name(name: str) -> bool:
    return bool(name) and "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")


def list_recordings(directory: Path, source_id: str) -> list[RecordingItem]:
    """Blocking (reads the index, stats the files): run it in a thread."""
    items = []
    for entry in current_segments(directory):
        if not _safe_name(entry.file):
            continue
        try:
            size = (directory / entry.file).stat().st_size
        except OSError:
            continue  # deleted by retention since the index was written
        items.append(RecordingItem(start=entry.start, duration_sec=entry.duration_sec, bytes=size,
                                   url=f"/artifacts/{RECORDINGS}/{quote(source_id)}/{quote(entry.file)}",
                                   open=entry.open))
    return items


@bp.get("/api/sources/<source_id>/recordings")
async def recordings(source_id: str):
    src = source_or_404(source_id)
    items = await asyncio.to_thread(list_recordings, recording_dir(src), src.id)
    return json_response({"itemCount": len(items), "items": items})


def resolve_artifact(settings: Settings, rest: str) -> Path | None:
    """The file a `/artifacts/<rest>` URL names, or None when it names nothing servable."""
    parts = rest.split("/")
    if not all(_safe_name(p) for p in parts) or any(p in (".", "..") for p in parts):
        return None
    if os.path.splitext(parts[-1])[1].lower() not in MIME_TYPES:
        return None
    if parts[0] == RECORDINGS:
        src = settings.source(parts[1]) if len(parts) == 3 else None
        if src is None:
            return None
        root, relative = Path(src.record.dir or settings.record_dir) / src.id, parts[2:]
    else:
        root, relative = Path(settings.record_dir), parts
    try:
        real_root = root.resolve(strict=True)
        real = root.joinpath(*relative).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        return None
    if not real.is_relative_to(real_root) or not real.is_file():
        return None  # a symlink out of the root, or a directory
    return real


def _if_range_matches(etag: str, last_modified: datetime) -> bool:
    if_range = request.headers.get("If-Range")
    if not if_range:
        return True
    return not is_resource_modified(http_range=request.headers.get("Range"), http_if_range=if_range, etag=etag,
                                    last_modified=last_modified, ignore_if_range=False)


async def send_artifact(path: Path) -> Response:
    try:
        st = path.stat()
        body = FileBody(path, buffer_size=CHUNK_BYTES)
    except OSError:
        return _not_found()
    size = st.st_size  # a growing (open) segment is served as far as it was when asked
    body.size = body.end = size
    etag = f'"{st.st_mtime_ns:x}-{size:x}"'
    last_modified = datetime.fromtimestamp(st.st_mtime, UTC)
    headers = {**_HEADERS, "ETag": etag, "Last-Modified": http_date(st.st_mtime)}
    mimetype = MIME_TYPES[path.suffix.lower()]
    if not is_resource_modified(http_if_modified_since=request.headers.get("If-Modified-Since"),
                                http_if_none_match=request.headers.get("If-None-Match"),
                                etag=etag, last_modified=last_modified):
        return Response(b"", status=304, headers=headers)
    status, start, stop = 200, 0, size
    ranges = parse_range_header(request.headers.get("Range"))
    if ranges is not None and ranges.units == "bytes" and len(ranges.ranges) == 1 \
            and _if_range_matches(etag, last_modified):
        span = ranges.range_for_length(size)
        if span is None and ranges.ranges[0][0] < 0 and size:  # `bytes=-N`, N > size: all of it
            span = (0, size)
        if span is None:
            response = error_response(416, "range_not_satisfiable", f"the file has {size} bytes",
                                      {**headers, "Content-Range": f"bytes */{size}"})
            return response
        status, (start, stop) = 206, span
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    # Several ranges or an unparsable Range header: the whole file, which HTTP allows.
    if request.method == "HEAD":
        response = Response(b"", status=status, headers=headers, mimetype=mimetype)
    else:
        await body.make_conditional(start, stop)
        response = Response(body, status=status, headers=headers, mimetype=mimetype)
        response.timeout = None  # as long as the client takes: a slow link, a big segment
    response.content_length = stop - start
    return response


@bp.get("/artifacts/<path:rest>")
async def artifact(rest: str):
    path = await asyncio.to_thread(resolve_artifact, settings(), rest)
    if path is None:
        return _not_found()
    return await send_artifact(path)
