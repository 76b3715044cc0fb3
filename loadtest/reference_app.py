"""The reference ceiling: plain uvicorn answering fixed bytes, no Ray, no Serve.

``GET /api/seats`` answers the same 15 KB of JSON an empty hall's seat map is (gzip-compressed
when asked, with an ETag and 304s, as the service does); ``GET /static-ceiling`` a constant.
The benchmarks divide what the service achieves by what this app achieves on the same
machine in the same run: the best a Python process can do for those bytes.

    python -m uvicorn loadtest.reference_app:app --workers 2 --port 18900
"""

from __future__ import annotations

import gzip
import hashlib
import json

SEATS = 15_000
BODY = json.dumps({"version": "reference", "status": "0" * SEATS}, separators=(",", ":")).encode()
BODY_GZIP = gzip.compress(BODY, mtime=0)
TAG = hashlib.sha256(BODY).hexdigest()[:16]
ETAG = f'"{TAG}"'.encode()
ETAG_GZIP = f'W/"{TAG}"'.encode()
CONSTANT = b'{"ok":true}'


def _headers(body: bytes, etag: bytes, gzipped: bool) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body)),
               (b"etag", etag), (b"cache-control", b"public, max-age=1"), (b"vary", b"Accept-Encoding")]
    return headers + [(b"content-encoding", b"gzip")] if gzipped else headers


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = dict(scope["headers"])
    if scope["path"] == "/api/seats":
        gzipped = b"gzip" in headers.get(b"accept-encoding", b"")
        body, etag = (BODY_GZIP, ETAG_GZIP) if gzipped else (BODY, ETAG)
        if TAG.encode() in headers.get(b"if-none-match", b""):
            await send({"type": "http.response.start", "status": 304, "headers": [(b"etag", etag)]})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": 200, "headers": _headers(body, etag, gzipped)})
        await send({"type": "http.response.body", "body": body})
        return
    body = CONSTANT
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]})
    await send({"type": "http.response.body", "body": body})
