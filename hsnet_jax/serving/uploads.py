"""What the server accepts from a client, checked before anything is decoded or queued.

An upload is the request body, raw (`Content-Type: image/...`) or the first file of a
multipart form, held in memory only (Starlette's own form parser spools files over 1 MB to a
temporary file; python-multipart's parser is fed the bytes here instead). The body is refused
past `max_bytes` (413), from Content-Length when given and while streaming otherwise; the image
is refused past `max_pixels` from its header alone (413: decompression bombs are never
decoded), and when Pillow does not recognise one of FORMATS in it (415). The client's file name
is only echoed back as a label (its last path component, at most 100 characters).
"""

from __future__ import annotations

import dataclasses
import io
from typing import AsyncIterator

from PIL import Image, UnidentifiedImageError
from python_multipart.multipart import MultipartParser, parse_options_header

# Formats a browser or phone sends; Pillow's others (EPS through Ghostscript, say) are refused.
FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")
DEFAULT_NAME = "upload"


class Refused(Exception):
    """A request the server answers with `status` and the one-line `reason`."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


@dataclasses.dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


async def read_body(headers, stream: AsyncIterator[bytes], max_bytes: int) -> bytes:
    """The whole body, or Refused(413) as soon as it is known to exceed `max_bytes`."""
    too_large = Refused(413, f"the upload is larger than the limit of {max_bytes / 1e6:g} MB")
    length = headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        raise too_large
    body = bytearray()
    async for chunk in stream:
        body += chunk
        if len(body) > max_bytes:
            raise too_large
    return bytes(body)


def _label(filename: bytes | str | None) -> str:
    if isinstance(filename, bytes):
        filename = filename.decode("utf-8", "replace")
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return name[:100] or DEFAULT_NAME


def first_file(body: bytes, content_type: str) -> Upload:
    """The first part of a multipart/form-data body that carries a file name."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise Refused(400, "a multipart body without a boundary")
    parts: list[dict] = []
    header: list[bytes] = [b"", b""]

    def begin() -> None:
        parts.append({"headers": {}, "data": bytearray()})
        header[:] = [b"", b""]

    def field(data: bytes, start: int, end: int) -> None:
        header[0] += data[start:end]

    def value(data: bytes, start: int, end: int) -> None:
        header[1] += data[start:end]

    def header_end() -> None:
        parts[-1]["headers"][header[0].lower()] = header[1]
        header[:] = [b"", b""]

    def data(chunk: bytes, start: int, end: int) -> None:
        parts[-1]["data"] += chunk[start:end]

    parser = MultipartParser(boundary, dict(on_part_begin=begin, on_header_field=field, on_header_value=value,
                                            on_header_end=header_end, on_part_data=data))
    try:
        parser.write(body)
        parser.finalize()
    except Exception as e:  # python-multipart's MultipartParseError and friends
        raise Refused(400, f"a malformed multipart body ({e})") from None
    for part in parts:
        _, disposition = parse_options_header(part["headers"].get(b"content-disposition", b""))
        if b"filename" in disposition:
            return Upload(_label(disposition[b"filename"]), bytes(part["data"]))
    raise Refused(400, "the form has no file: send the photo as a file field (or as the raw body)")


def upload_of(body: bytes, content_type: str) -> Upload:
    """The photo of a request: the first file of a multipart form, else the raw body."""
    if content_type.lower().startswith("multipart/form-data"):
        upload = first_file(body, content_type)
    else:
        upload = Upload(DEFAULT_NAME, body)
    if not upload.data:
        raise Refused(400, "no photo in the request (an empty body or file)")
    return upload


def check_image(upload: Upload, max_pixels: int) -> tuple[int, int]:
    """(width, height) read from the image's header without decoding its pixels; Refused 415
    for what is not an image of FORMATS, 413 for more than `max_pixels` pixels."""
    try:
        with Image.open(io.BytesIO(upload.data), formats=FORMATS) as image:
            width, height = image.size
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise Refused(413, f"{upload.name}: the image has more than {max_pixels} pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise Refused(415, f"{upload.name}: not an image (accepted: {', '.join(FORMATS)})") from None
    if width * height > max_pixels:
        raise Refused(413, f"{upload.name}: {width}x{height} is {width * height} pixels, more than the "
                           f"limit of {max_pixels}")
    return width, height
