"""QR codes of short URLs, rendered with segno (SVG or PNG)."""

from __future__ import annotations

import io
from dataclasses import dataclass

from app.errors import InvalidInput
from app.services.api_keys import Principal
from app.services.links import get_link

MEDIA_TYPES = {"svg": "image/svg+xml", "png": "image/png"}
MAX_SCALE = 40
MAX_BORDER = 16


@dataclass(frozen=True)
class QrImage:
    """A rendered QR code and whether any cache may keep it (the link is anonymous, hence public)."""

    body: bytes
    media_type: str
    extension: str
    public: bool


def render_qr(data: str, *, kind: str = "svg", scale: int = 4, border: int = 4) -> bytes:
    """`data` as a QR code: `kind` svg or png, `scale` pixels per module, `border` quiet-zone modules."""
    if kind not in MEDIA_TYPES:
        raise InvalidInput(f"format must be one of {', '.join(MEDIA_TYPES)}", field="format")
    if not 1 <= scale <= MAX_SCALE:
        raise InvalidInput(f"scale must be between 1 and {MAX_SCALE}", field="scale")
    if not 0 <= border <= MAX_BORDER:
        raise InvalidInput(f"border must be between 0 and {MAX_BORDER}", field="border")
    buffer = io.BytesIO()
    # A full QR code, never a Micro QR (which many phone readers cannot decode).
    import segno  # imported on the first QR code: most processes never draw one (~0.5 MiB)

    segno.make_qr(data).save(buffer, kind=kind, scale=scale, border=border)
    return buffer.getvalue()


def link_qr(
    code: str, principal: Principal | None, base: str, *, kind: str = "svg", scale: int = 4, border: int = 4
) -> QrImage:
    """The QR code of the short URL `base/code` for a caller who may see the link (else LinkNotFound)."""
    link = get_link(code, principal)
    body = render_qr(f"{base}/{link.code}", kind=kind, scale=scale, border=border)
    return QrImage(body, MEDIA_TYPES[kind], kind, public=link.owner_id is None)
