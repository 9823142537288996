"""Streamed request bodies: media-type checks and chunking for the bulk upload routes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request

from .problems import Problem

# Fewer, larger pieces: each one is a hop to a worker thread.
UPLOAD_CHUNK_BYTES = 1 << 20


class UnsupportedMediaType(Problem):
    status, title, type_suffix = 415, "Unsupported media type", "unsupported-media-type"


def require_media_type(request: Request, *accepted: str) -> None:
    declared = request.headers.get("content-type", "")
    media_type = declared.split(";", 1)[0].strip().lower()
    if media_type not in accepted:
        raise UnsupportedMediaType(f"the body must be {' or '.join(accepted)}, not {media_type or 'untyped'}")


async def body_chunks(request: Request) -> AsyncIterator[bytes]:
    """The body in pieces of about UPLOAD_CHUNK_BYTES, as it arrives."""
    pending = bytearray()
    async for piece in request.stream():
        pending += piece
        if len(pending) >= UPLOAD_CHUNK_BYTES:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)
