#!/usr/bin/python3
"""Writes the .npz fixtures of spec/45-npz_spec.lua with NumPy and zipfile.

Valid archives: what numpy.savez and numpy.savez_compressed write, with
arrays of several dtypes and dimensions and a JSON byte string; expected.json
holds, per archive, the entries in archive order with their shapes, the
float32 values NumPy converts them to and, for the 1-D uint8 entry, its bytes.
Broken archives: each way an .npz can be damaged or not what segloss reads.
(Re-running changes only the time stamps numpy.savez writes.)

Run:  /usr/bin/python3 tools/make_npz_fixtures.py   (needs python3-numpy)
"""
import io
import json
import os
import struct
import zipfile

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "spec", "fixtures", "npz")


def path(name):
    return os.path.join(OUT, name)


def npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def npy_header(d):
    """A version 1.0 header for the dict literal d, padded as NumPy pads it."""
    h = d.encode("latin1")
    pad = (64 - (10 + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h


def write_zip(name, members, method=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path(name), "w", method) as z:
        for n, data in members:
            z.writestr(zipfile.ZipInfo(n, (1980, 1, 1, 0, 0, 0)), data, compress_type=method)


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(20261201)
    meta = json.dumps({"epoch": 3, "note": "caf\u00e9 \u2713", "lr": 0.001}).encode("utf-8")
    arrays = [
        ("enc0.unit1.conv.weight", rng.standard_normal((4, 1, 3, 3)).astype("<f4")),
        ("enc0.unit1.conv.bias", rng.standard_normal(4).astype("<f4")),
        ("vol", rng.standard_normal((1, 2, 2, 3, 2)).astype("<f4")),
        ("f8", (rng.standard_normal((2, 3, 2)) * 100).astype("<f8")),
        ("i4", rng.integers(-2**31, 2**31, (3, 4)).astype("<i4")),
        ("mask", rng.integers(0, 2, (2, 5)).astype("?")),
        ("special", np.array([0.0, -0.0, np.inf, -np.inf, 1e-45, 3.4028235e38, -3.4028235e38],
                             dtype="<f4")),
        ("meta", np.frombuffer(meta, dtype="u1")),
    ]
    expected = {}
    for fname, save in (("savez.npz", np.savez), ("savez_compressed.npz", np.savez_compressed)):
        save(path(fname), **dict(arrays))
        entries = []
        for name, arr in arrays:
            e = {"name": name, "shape": list(arr.shape),
                 "data": [float(v) for v in arr.astype(np.float32).ravel()]}
            if arr.dtype == np.uint8 and arr.ndim == 1:
                e["bytes"] = arr.tobytes().decode("utf-8")
            entries.append(e)
        expected[fname] = entries

    good = npy_bytes(np.arange(6, dtype="<f4").reshape(2, 3))
    # not .npy entries, or none of segloss' business
    write_zip("text_entry.npz", [("readme.txt", b"hello\n")])
    write_zip("dir_entry.npz", [("a.npy", good), ("sub/", b"")])
    # damaged .npy inside a sound zip
    write_zip("bad_header.npz", [("a.npy", good), ("b.npy", npy_header("['descr', '<f4']") + b"\0" * 4)])
    write_zip("truncated_npy.npz", [("a.npy", good[:-5])])
    write_zip("trailing_npy.npz", [("a.npy", good + b"\0\0\0\0")])
    write_zip("huge_shape.npz", [("a.npy", npy_header(
        "{'descr': '<f4', 'fortran_order': False, 'shape': (549755813888,), }") + b"\0" * 8)])
    write_zip("empty_npy.npz", [("a.npy", b"")])
    write_zip("zero_size.npz", [("z.npy", npy_bytes(np.zeros((0,), dtype="u1")))])
    # two entries with one name (zipfile warns, and numpy would see the last)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_zip("duplicate.npz", [("a.npy", good), ("a.npy", good)])
    # a flipped data byte: the CRC tells
    write_zip("bad_crc.npz", [("a.npy", good)])
    raw = bytearray(open(path("bad_crc.npz"), "rb").read())
    raw[raw.index(good) + len(good) - 1] ^= 0xFF
    open(path("bad_crc.npz"), "wb").write(bytes(raw))
    # bzip2, which numpy never writes
    write_zip("bzip2.npz", [("a.npy", good)], zipfile.ZIP_BZIP2)
    # a deflated entry that claims far more bytes than deflate can give (a
    # zip bomb's lie): both headers patched to 2^40
    write_zip("claims_huge.npz", [("a.npy", good)], zipfile.ZIP_DEFLATED)
    raw = bytearray(open(path("claims_huge.npz"), "rb").read())
    big = struct.pack("<I", 0xFFFFFFF0)
    lh = raw.index(b"PK\x03\x04")
    raw[lh + 22:lh + 26] = big
    cd = raw.index(b"PK\x01\x02")
    raw[cd + 24:cd + 28] = big
    open(path("claims_huge.npz"), "wb").write(bytes(raw))

    with open(path("expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
