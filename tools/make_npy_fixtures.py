#!/usr/bin/python3
"""Writes the .npy fixtures of spec/03-npy_spec.lua with NumPy itself.

Valid files cover every dtype segloss reads and the three format versions;
`expected.json` holds, for each, the shape and the values NumPy gets by
converting the array to float32 (the reference for segloss' conversion).
Broken files cover each way a file can be malformed or unsupported.

Run:  /usr/bin/python3 tools/make_npy_fixtures.py   (needs python3-numpy)
"""
import io
import json
import os
import struct

import numpy as np
from numpy.lib import format as npf

OUT = os.path.join(os.path.dirname(__file__), "..", "spec", "fixtures", "npy")


def save(name, arr, version=None):
    buf = io.BytesIO()
    if version is None:
        np.save(buf, arr)
    else:
        npf.write_array(buf, arr, version=version)
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(buf.getvalue())
    return buf.getvalue()


def raw(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def header(d, version=(1, 0)):
    """A header for dict literal d, padded as NumPy pads it."""
    h = d.encode("latin1")
    lenbytes = 2 if version[0] == 1 else 4
    pad = (64 - (6 + 2 + lenbytes + len(h) + 1) % 64) % 64
    h = h + b" " * pad + b"\n"
    fmt = "<H" if lenbytes == 2 else "<I"
    return b"\x93NUMPY" + bytes(version) + struct.pack(fmt, len(h)) + h


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))
    rng = np.random.default_rng(20261129)
    expected = {}

    def valid(name, arr, version=None):
        save(name, arr, version)
        f32 = arr.astype(np.float32)
        expected[name] = {
            "shape": list(arr.shape),
            # float32 values as exact decimal (repr of the double they widen to)
            "data": [float(v) for v in f32.ravel(order="C")],
        }

    base = rng.standard_normal((2, 3, 4)) * 10
    valid("f4.npy", base.astype("<f4"))
    valid("f8.npy", base.astype("<f8") + 1e-9)  # rounding to float32 matters
    valid("f8_big.npy", np.array([1e300, -1e300, 3.4028235677973366e38, 1e-50], dtype="<f8"))
    valid("i1.npy", rng.integers(-128, 128, (5, 7)).astype("i1"))
    valid("i2.npy", rng.integers(-32768, 32768, (5, 7)).astype("<i2"))
    valid("i4.npy", rng.integers(-2**31, 2**31, (3, 4, 5)).astype("<i4"))
    valid("i8.npy", np.array([[-2**62, 2**53 + 1, 16777217, -7]], dtype="<i8"))
    valid("u1.npy", rng.integers(0, 256, (1, 1, 4, 4)).astype("u1"))
    valid("u2.npy", rng.integers(0, 65536, (9,)).astype("<u2"))
    valid("u4.npy", rng.integers(0, 2**32, (2, 2)).astype("<u4"))
    valid("u8.npy", np.array([0, 1, 2**64 - 1, 2**40 + 3], dtype="<u8"))
    valid("b1.npy", rng.integers(0, 2, (2, 1, 3, 3)).astype("?"))
    valid("f4_5d.npy", rng.standard_normal((2, 1, 2, 3, 2)).astype("<f4"))
    valid("f4_1d.npy", np.arange(7, dtype="<f4") / 8)
    valid("f4_v2.npy", base.astype("<f4"), version=(2, 0))
    valid("f4_v3.npy", base.astype("<f4"), version=(3, 0))
    valid("f4_special.npy", np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38],
                                     dtype="<f4"))
    valid("fortran_1d.npy", np.asfortranarray(np.arange(4, dtype="<f4")))  # 1-D is C order too

    # the float32 file segloss must write byte for byte (spec: save then compare)
    save("written_2x3.npy", np.array([[1, 2, 3], [4, 5, 6.5]], dtype="<f4"))
    save("written_5.npy", np.array([0.25, -1, 2, 3, 4], dtype="<f4"))

    # malformed or unsupported
    good = open(os.path.join(OUT, "f4.npy"), "rb").read()
    raw("bad_magic.npy", b"\x93NUMPZ" + good[6:])
    raw("empty.npy", b"")
    raw("truncated_header.npy", good[:40])
    raw("truncated_data.npy", good[:-5])
    raw("trailing_bytes.npy", good + b"\x00\x00\x00\x00")
    raw("version4.npy", b"\x93NUMPY\x04\x00" + good[8:])
    save("fortran.npy", np.asfortranarray(base.astype("<f4")))
    save("big_endian.npy", base.astype(">f4"))
    save("f2.npy", base.astype("<f2"))
    save("c8.npy", base.astype("<c8"))
    save("structured.npy", np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
    save("scalar.npy", np.float32(3.0))
    save("zero_size.npy", np.zeros((2, 0), dtype="<f4"))
    save("six_dims.npy", np.zeros((1, 1, 1, 1, 1, 2), dtype="<f4"))
    raw("not_a_dict.npy", header("['descr', '<f4']") + b"\x00" * 4)
    raw("missing_shape.npy", header("{'descr': '<f4', 'fortran_order': False, }"))
    raw("bad_shape.npy", header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }"))
    raw("extra_key.npy", header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1, }")
        + b"\x00" * 4)
    raw("huge_shape.npy", header("{'descr': '<f4', 'fortran_order': False, "
                                 "'shape': (1000000000, 1000000000, 1000000000), }"))

    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
