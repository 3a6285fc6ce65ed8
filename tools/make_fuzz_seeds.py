#!/usr/bin/env python3
"""Seeds of the libFuzzer harnesses (fuzz/c/corpus/) and the fixtures of the
bugs they found (spec/fixtures/), from the standard library alone.

    /usr/bin/python3 tools/make_fuzz_seeds.py

Writes PNG seeds (grey 1/2/4/8/16 bits, palette with tRNS, interlaced,
grey + alpha, RGB, ancillary chunks), .npy seeds of every dtype the reader
takes, and spec/fixtures/png/huge_text.png: a 2x2 grey PNG whose tEXt chunk
claims 300 MB (libpng allocated and cleared it before reading a byte).
The .npz seeds are spec/fixtures/npz's; the checkpoint seeds come from
fuzz/c/checkpoint_seeds.lua (segloss itself writes them).
"""
import os
import struct
import zlib

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CORPUS = os.path.join(ROOT, "fuzz", "c", "corpus")


def chunk(kind, data, length=None):
    n = len(data) if length is None else length
    return struct.pack(">I", n) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(w, h, depth, ctype, rows, interlace=0, extra=b"", plte=None, trns=None):
    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace))
    if plte is not None:
        out += chunk(b"PLTE", plte)
    if trns is not None:
        out += chunk(b"tRNS", trns)
    out += extra
    raw = b"".join(b"\x00" + r for r in rows)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def packed(values, depth):
    bits = "".join(format(v, "0%db" % depth) for v in values)
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def png_seeds():
    d = os.path.join(CORPUS, "png")
    for depth in (1, 2, 4):
        top = (1 << depth) - 1
        rows = [packed([(x + y) % (top + 1) for x in range(5)], depth) for y in range(3)]
        write(os.path.join(d, "grey%d.png" % depth), png(5, 3, depth, 0, rows))
    write(os.path.join(d, "grey8_text.png"),
          png(3, 2, 8, 0, [bytes([0, 1, 2]), bytes([3, 4, 255])],
              extra=chunk(b"tEXt", b"Comment\x00seed") + chunk(b"gAMA", struct.pack(">I", 45455))))
    write(os.path.join(d, "grey16.png"), png(2, 2, 16, 0, [struct.pack(">HH", 0, 65535), struct.pack(">HH", 1, 300)]))
    write(os.path.join(d, "palette_trns.png"),
          png(4, 2, 8, 3, [bytes([0, 1, 2, 1]), bytes([2, 1, 0, 0])], plte=bytes(range(9)), trns=b"\x00\x80"))
    write(os.path.join(d, "palette2.png"), png(4, 1, 2, 3, [packed([0, 1, 2, 3], 2)], plte=bytes(range(12))))
    write(os.path.join(d, "interlaced.png"), png(3, 3, 8, 0, [bytes([1, 2, 3])] * 3, interlace=1))
    write(os.path.join(d, "grey_alpha.png"), png(2, 1, 8, 4, [bytes([10, 255, 20, 0])]))
    write(os.path.join(d, "rgb_chrm.png"),
          png(2, 1, 8, 2, [bytes([255, 0, 0, 0, 0, 255])],
              extra=chunk(b"cHRM", struct.pack(">8I", 31270, 32900, 64000, 33000, 30000, 60000, 15000, 6000))))
    write(os.path.join(d, "rgba16.png"), png(1, 1, 16, 6, [b"\x01\x00\x02\x00\x03\x00\xff\xff"]))
    # the finding: a tEXt chunk that claims 300 MB, its bytes absent
    write(os.path.join(ROOT, "spec", "fixtures", "png", "huge_text.png"),
          png(2, 2, 8, 0, [b"\x00\x01", b"\x02\x03"],
              extra=chunk(b"tEXt", b"Comment\x00x", length=300 << 20)))


def npy(descr, shape, data, version=1):
    dims = ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "")
    head = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, dims)
    pre = 10 if version == 1 else 12
    pad = -(pre + len(head) + 1) % 64
    head = (head + " " * pad + "\n").encode()
    size = struct.pack("<H", len(head)) if version == 1 else struct.pack("<I", len(head))
    return b"\x93NUMPY" + bytes([version, 0]) + size + head + data


def npy_seeds():
    d = os.path.join(CORPUS, "npy")
    write(os.path.join(d, "f8_overflow.npy"), npy("<f8", (2,), struct.pack("<2d", 1.0, 1e300)))
    write(os.path.join(d, "u2_3d.npy"), npy("<u2", (1, 2, 2), struct.pack("<4H", 0, 1, 65535, 7)))
    write(os.path.join(d, "i8_v2.npy"), npy("<i8", (2, 1), struct.pack("<2q", -(1 << 62), 3), version=2))


if __name__ == "__main__":
    png_seeds()
    npy_seeds()
