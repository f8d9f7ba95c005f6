"""A ticket's code as a QR image (segno: SVG and PNG without Pillow).

Error correction M (15 %) keeps a ~150-character code at version 7 or so: quick to scan from a
phone screen, robust to a crease on paper."""

from __future__ import annotations

import io

import segno


def svg(code: str) -> bytes:
    out = io.BytesIO()
    segno.make_qr(code, error="m").save(out, kind="svg", scale=4, border=4, xmldecl=True)
    return out.getvalue()


def png(code: str, scale: int = 6) -> bytes:
    out = io.BytesIO()
    segno.make_qr(code, error="m").save(out, kind="png", scale=scale, border=4)
    return out.getvalue()
