"""Responses both adapters send alike."""

from __future__ import annotations

from fastapi.responses import Response


def csv_download(text: str, filename: str) -> Response:
    """CSV text as a file the browser saves as ``filename``, and does not cache."""
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )
