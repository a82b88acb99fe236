"""What a shared file is, decided by its content, and the name it is kept under (SPEC §1.6).

The client's content type and file name extension are never trusted: an HTML page named
``photo.png`` must not come back to a browser as anything it would run. A file is accepted
only if Pillow can verify it as a PNG, JPEG, GIF or WebP image, or if it starts with the PDF
signature; the type stored (and later served) is the detected one.
"""

from __future__ import annotations

import unicodedata
import warnings
from typing import IO

from django.utils.translation import gettext as _
from PIL import Image

from chat.errors import ChatError

PDF = "application/pdf"
IMAGE_TYPES = {
    "PNG": "image/png",
    "JPEG": "image/jpeg",
    "GIF": "image/gif",
    "WEBP": "image/webp",
}
EXTENSIONS = {
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
    PDF: (".pdf",),
}
MAX_FILENAME = 200


class UnsupportedFileType(ChatError):
    """Content of a type reflib does not accept: ``invalid``, which HTTP answers with 415."""

    http_status = 415

    def __init__(self) -> None:
        super().__init__("invalid", _("Only images (PNG, JPEG, GIF, WebP) and PDF files."))


def detect_content_type(stream: IO[bytes]) -> str:
    """The type of an accepted file; UnsupportedFileType for any other content, ChatError
    ``too_large`` for an image with more pixels than Pillow will safely handle."""
    stream.seek(0)
    try:
        if stream.read(5) == b"%PDF-":
            return PDF
        stream.seek(0)
        return _image_type(stream)
    finally:
        stream.seek(0)


def _image_type(stream: IO[bytes]) -> str:
    try:
        with warnings.catch_warnings():
            # Past MAX_IMAGE_PIXELS Pillow only warns; such an image is refused all the same.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream, formats=list(IMAGE_TYPES)) as image:
                image_format = image.format
                image.verify()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ChatError("too_large", _("The image has too many pixels.")) from None
    except Exception:
        # Pillow raises many kinds of exception on malformed input (OSError, SyntaxError,
        # ValueError, struct.error, ...): each one means "not an image we accept".
        raise UnsupportedFileType from None
    if image_format not in IMAGE_TYPES:
        raise UnsupportedFileType
    return IMAGE_TYPES[image_format]


def clean_filename(name: str, content_type: str) -> str:
    """A display name for the file: no directories or control characters, at most 200
    characters, and an extension that matches the detected type, so that a download saved to
    disk opens as what it is."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if not unicodedata.category(ch).startswith("C"))
    base = base.strip().strip(".").strip()
    extensions = EXTENSIONS[content_type]
    stem = base or "file"
    if not stem.lower().endswith(extensions):
        stem = f"{stem}{extensions[0]}"
    if len(stem) > MAX_FILENAME:
        extension = extensions[0]
        stem = stem[: MAX_FILENAME - len(extension)].rstrip() + extension
    return stem
