"""The sandbox's voicemail recordings: a real MP3 for each voicemail, as long as its `duration`.

voicemail.mp3 holds about 3 s of sound: an ID3v2.3 tag (encoder, title, artist, TLEN), 81 MPEG-2
Layer III frames (24 kbps CBR, 16 kHz mono: 108 bytes and 36 ms each, no padding) and an ID3v1
tag. It has no Xing/Info (LAME) frame, so there is no frame count to fix or drop, and a decoder
times the file by its frames, as for any CBR file. Its first frame starts its main data in itself
(main_data_begin 0), and every later frame reaches back only into frames before it, so the frames
repeated from the first one on, and cut after any frame, still decode.

A recording of `duration` seconds is those frames repeated and cut to the whole number of frames
nearest the duration (so it plays within half a frame, 18 ms, of it; two frames at least), after
the ID3v2 tag with its TLEN (length in ms) rewritten to the new length. The ID3v1 tag is left out:
the ID3v2 tag says the same, and readers that time a CBR file by its size (mutagen does) would
count its 128 bytes as 43 ms of sound. Recordings are cached per duration.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources

SAMPLE_RATE = 16_000
SAMPLES_PER_FRAME = 576  # MPEG-2 Layer III
FRAME_SECONDS = SAMPLES_PER_FRAME / SAMPLE_RATE  # 0.036
MIN_FRAMES = 2  # one frame alone: decoders and parsers find no stream (mpg123, mutagen)
_BITRATES = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)  # kbps, MPEG-2 Layer III
_RATES = {0: 22050, 1: 24000, 2: 16000}  # MPEG-2


@cache
def voicemail_mp3() -> bytes:
    """The shipped file, as it is."""
    return resources.files("relatel_mcp.sandbox").joinpath("voicemail.mp3").read_bytes()


@dataclass(frozen=True)
class Parts:
    """An MP3 file taken apart: its ID3v2 frames (id, body), audio frames and ID3v1 tag."""

    tag_frames: tuple[tuple[bytes, bytes], ...]
    frames: tuple[bytes, ...]
    id3v1: bytes


def synchsafe(data: bytes) -> int:
    return (data[0] << 21) | (data[1] << 14) | (data[2] << 7) | data[3]


def split(data: bytes) -> Parts:
    """`data` taken apart; ValueError for what this module does not make (not ID3v2.3, not MPEG-2
    Layer III at 16 kHz, anything between the frames)."""
    if data[:4] != b"ID3\x03" or data[5] != 0:
        raise ValueError("expected an ID3v2.3 tag without flags")
    end = 10 + synchsafe(data[6:10])
    tag_frames, offset = [], 10
    while offset + 10 <= end and data[offset] != 0:  # a frame; zeros are padding
        size = int.from_bytes(data[offset + 4 : offset + 8], "big")
        tag_frames.append((data[offset : offset + 4], data[offset + 10 : offset + 10 + size]))
        offset += 10 + size
    frames, offset = [], end
    while offset + 4 <= len(data) and data[offset] == 0xFF and data[offset + 1] & 0xE0 == 0xE0:
        header = data[offset : offset + 4]
        if (
            (header[1] >> 3) & 3 != 2
            or (header[1] >> 1) & 3 != 1
            or _RATES[(header[2] >> 2) & 3] != SAMPLE_RATE
        ):
            raise ValueError("expected MPEG-2 Layer III frames at 16 kHz")
        length = 72_000 * _BITRATES[header[2] >> 4] // SAMPLE_RATE + ((header[2] >> 1) & 1)
        frames.append(data[offset : offset + length])
        offset += length
    id3v1 = data[offset:]
    if id3v1 and (id3v1[:3] != b"TAG" or len(id3v1) != 128):
        raise ValueError("expected nothing but an ID3v1 tag after the frames")
    if not frames or frames[0][4] != 0:  # main_data_begin: the first frame needs no earlier one
        raise ValueError("expected a first frame whose main data starts in itself")
    return Parts(tuple(tag_frames), tuple(frames), id3v1)


def id3v2(tag_frames: tuple[tuple[bytes, bytes], ...], length_ms: int) -> bytes:
    """An ID3v2.3 tag of these frames, TLEN (if any) saying `length_ms`."""
    body = b"".join(
        name + len(value).to_bytes(4, "big") + b"\x00\x00" + value
        for name, value in (
            (name, b"\x00" + str(length_ms).encode() if name == b"TLEN" else value)
            for name, value in tag_frames
        )
    )
    size = len(body)
    return (
        b"ID3\x03\x00\x00"
        + bytes((size >> 21 & 0x7F, size >> 14 & 0x7F, size >> 7 & 0x7F, size & 0x7F))
        + body
    )


def frame_count(duration: float) -> int:
    """How many frames play nearest to `duration` seconds (at least `MIN_FRAMES`)."""
    return max(MIN_FRAMES, round(duration / FRAME_SECONDS))


@lru_cache(maxsize=32)
def recording(duration: float | None) -> bytes:
    """A voicemail's MP3 for `duration` seconds; the shipped file when the duration is unknown."""
    if duration is None or isinstance(duration, bool):
        return voicemail_mp3()
    parts = split(voicemail_mp3())
    count = frame_count(duration)
    frames = (parts.frames * (count // len(parts.frames) + 1))[:count]
    length_ms = round(count * FRAME_SECONDS * 1000)
    return id3v2(parts.tag_frames, length_ms) + b"".join(frames)
