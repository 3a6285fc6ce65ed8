#!/usr/bin/python3
"""Writes the PNG fixtures of spec/50-data_spec.lua into spec/fixtures/png/,
with Python's standard library only (zlib, struct), independently of
segloss's libpng writer, so that the reader is checked against another
encoder. Regenerate with: /usr/bin/python3 tools/png_fixtures.py

  grey8.png     8-bit grey 5x7, value (3*r + 11*c) % 256 at row r, column c
  grey16.png    16-bit grey 4x6, value (r * 6 + c) * 4099 % 65536
  grey1.png     1-bit grey 3x10, value (r + c) % 2 (unpacked, not rescaled)
  labels.png    8-bit palette 6x6, index (r + c) % 3 (class labels)
  rgb.png       8-bit RGB 2x2 (refused: colour)
  rgbmix.png    8-bit RGBA 2x2: grey 10, grey 200, pure red, pure blue (read as
                intensities in "grey" mode: Rec. 709 luminance)
  truncated.png grey8.png cut in the middle of its image data
  badcrc.png    grey8.png with one byte of its image data changed
  notpng.png    text
"""
import os
import struct
import zlib

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spec", "fixtures", "png")


def chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(w, h, depth, colour, rows, extra=b""):
    raw = b"".join(b"\x00" + r for r in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def pack_bits(vals, depth):
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = (acc << depth) | v
        n += depth
        if n == 8:
            out.append(acc)
            acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}
    files["grey8.png"] = png(7, 5, 8, 0, [bytes((3 * r + 11 * c) % 256 for c in range(7)) for r in range(5)])
    files["grey16.png"] = png(6, 4, 16, 0, [b"".join(struct.pack(">H", (r * 6 + c) * 4099 % 65536)
                                                     for c in range(6)) for r in range(4)])
    files["grey1.png"] = png(10, 3, 1, 0, [pack_bits([(r + c) % 2 for c in range(10)], 1) for r in range(3)])
    plte = chunk(b"PLTE", bytes([0, 0, 0, 255, 0, 0, 0, 255, 0]))
    files["labels.png"] = png(6, 6, 8, 3, [bytes((r + c) % 3 for c in range(6)) for r in range(6)], plte)
    files["rgb.png"] = png(2, 2, 8, 2, [bytes(6) for _ in range(2)])
    files["rgbmix.png"] = png(2, 2, 8, 6, [bytes([10, 10, 10, 255, 200, 200, 200, 128]),
                                           bytes([255, 0, 0, 255, 0, 0, 255, 0])])
    g = files["grey8.png"]
    idat = g.index(b"IDAT")
    files["truncated.png"] = g[:idat + 12]
    bad = bytearray(g)
    bad[idat + 6] ^= 0x55
    files["badcrc.png"] = bytes(bad)
    files["notpng.png"] = b"this is not a PNG file\n"
    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
