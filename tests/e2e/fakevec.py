"""The fake provider's embedding function (tests/tools/fake_vectors.h),
reimplemented from its written definition, and checks of embedpipe's float
output against it: every float must read back as the same float32 and be
printed with the fewest significant digits that do so."""

import math
import re
import struct

M64 = (1 << 64) - 1
NATIVE_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072,
               "text-embedding-ada-002": 1536}


def _f32(x):
    """x rounded to the nearest float32, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


def vector(model, dims, text):
    """The float32 values (as Python floats) of the vector for (model, dims,
    text); text is a str (encoded as UTF-8) or bytes."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    h = 0xcbf29ce484222325
    for b in model.encode() + b"\0" + str(dims).encode() + b"\0" + text:
        h = ((h ^ b) * 0x100000001b3) & M64
    state = h
    raws = []
    total = 0.0
    for _ in range(dims):
        state = (state + 0x9e3779b97f4a7c15) & M64
        z = state
        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M64
        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M64
        z ^= z >> 31
        raw = ((z >> 40) - (1 << 23)) / 8388608.0  # exact in float32
        raws.append(raw)
        total += raw * raw
    if total == 0:
        return [1.0] + [0.0] * (dims - 1) if dims else []
    scale = 1.0 / math.sqrt(total)
    return [_f32(r * scale) for r in raws]


def bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def shortest_digits(v):
    """The fewest significant decimal digits that read back as float32 v."""
    if v == 0:
        return 1
    for p in range(1, 10):
        if _f32(float("%.*e" % (p - 1, v))) == v:
            return p
    raise AssertionError("no float32 round trip for %r" % v)


_NUM = re.compile(r"-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$")


def check_embedding_text(array_text, expected):
    """array_text: the JSON array of an output line exactly as printed (with
    brackets). Raises AssertionError unless it holds exactly the float32s of
    `expected`, each in the shortest round-trip form."""
    assert array_text.startswith("[") and array_text.endswith("]"), array_text[:40]
    tokens = array_text[1:-1].split(",")
    assert len(tokens) == len(expected), "%d floats, want %d" % (len(tokens), len(expected))
    for i, (t, want) in enumerate(zip(tokens, expected)):
        m = _NUM.match(t)
        assert m, "float %d is %r, not a JSON number" % (i, t)
        got = float(t)
        assert bits(got) == bits(want), "float %d is %s, want %r (float32 bits %08x vs %08x)" % (
            i, t, want, bits(got), bits(want))
        sig = (m.group(1) + (m.group(2) or "")).lstrip("0") or "0"
        short = shortest_digits(want)
        assert len(sig) == short, "float %d printed as %s: %d significant digits, shortest is %d" % (
            i, t, len(sig), short)
