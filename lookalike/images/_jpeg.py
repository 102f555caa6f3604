"""Progressive JPEG at 1/8 scale without its AC scans.

libjpeg decodes a JPEG at 1/8 of its size (Pillow's ``draft``) from the DC coefficient of each 8x8 block alone
(its 1x1 inverse DCT). A baseline JPEG interleaves DC and AC coefficients, so all of it must be decoded anyway;
a progressive JPEG stores them in separate scans, and most of its bytes (and of the decoding time) are the AC
scans of the full-resolution components (luma), which a 1/8-scale decode throws away. :func:`dc_only` rewrites
such a file without them: the same headers and tables, every DC scan (first and refinement) and the AC scans of
the subsampled components (chroma: libjpeg scales their inverse DCT to 2x2 or more so as to upsample them, and
that uses their first AC coefficients), then the end marker. Decoded at 1/8 scale it gives the same pixels as the
whole file (a test checks); at any other scale it would not, and it is not used.
"""

from __future__ import annotations

_SOI, _EOI, _SOS, _SOF2 = 0xD8, 0xD9, 0xDA, 0xC2
_RST = range(0xD0, 0xD8)
_STANDALONE = {0x01, *_RST}  # markers without a length


def _scan_end(data: bytes, pos: int) -> int:
    """The offset of the first marker after the entropy-coded data starting at ``pos`` (0xFF00 is a stuffed
    byte, 0xFFD0-D7 a restart marker: both belong to the scan)."""
    while True:
        pos = data.find(b"\xff", pos)
        if pos < 0 or pos + 1 >= len(data):
            return len(data)
        following = data[pos + 1]
        if following == 0x00 or following in _RST or following == 0xFF:
            pos += 1 if following == 0xFF else 2
            continue
        return pos


def dc_only(data: bytes) -> bytes | None:
    """The progressive JPEG ``data`` with only its DC scans (None: not a progressive JPEG, or not one this parser
    is sure of; the caller then decodes the whole file)."""
    if not data.startswith(b"\xff\xd8"):
        return None
    out = [b"\xff\xd8"]
    pos, progressive, scans, ended = 2, False, 0, False
    full: set[int] = set()  # the components at the frame's full resolution: their AC scans are dropped
    while pos + 2 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _EOI:
            ended = True
            break
        if marker in _STANDALONE or marker == _SOI or pos + 4 > len(data):
            return None  # not where a well-formed file has them
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        segment_end = pos + 2 + length
        if length < 2 or segment_end > len(data):
            return None
        if marker == _SOF2:
            progressive = True
            frame = data[pos + 4 : segment_end]
            count = frame[5] if len(frame) > 5 else 0
            if len(frame) != 6 + 3 * count or not count:
                return None
            sampling = {frame[6 + 3 * i]: frame[7 + 3 * i] for i in range(count)}
            h_max, v_max = max(v >> 4 for v in sampling.values()), max(v & 15 for v in sampling.values())
            full = {c for c, v in sampling.items() if v >> 4 == h_max and v & 15 == v_max}
        elif 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # another frame type
            return None
        if marker != _SOS:
            out.append(data[pos:segment_end])
            pos = segment_end
            continue
        header = data[pos + 4 : segment_end]
        components = header[0] if header else 0
        if len(header) != 1 + 2 * components + 3:
            return None
        start, stop = header[1 + 2 * components], header[2 + 2 * components]
        end = _scan_end(data, segment_end)
        if start == 0 and stop != 0:
            return None  # DC with AC in one scan: not a progressive script we know
        ids = {header[1 + 2 * i] for i in range(components)}
        if start == 0 or not ids <= full:  # a DC scan, or the AC of a subsampled component: kept
            out.append(data[pos:end])
            scans += 1
        pos = end
    if not progressive or not scans or not ended:
        return None  # a file cut short is decoded whole, so that it fails as truncated
    out.append(b"\xff\xd9")
    return b"".join(out)
