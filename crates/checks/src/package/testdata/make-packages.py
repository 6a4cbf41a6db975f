#!/usr/bin/env python3
"""Writes the text input for `db5.3_load -T -t hash Packages` (see README.md):
rpm header blobs keyed by little-endian instance numbers, like rpm's own
BerkeleyDB backend stores them."""
import struct, sys

def blob(name, version, release, pad=0):
    index, data = [], b""
    for tag, s in [(1000, name), (1001, version), (1002, release), (1022, "x86_64")]:
        index.append((tag, 6, len(data), 1)); data += s.encode() + b"\0"
    if pad:  # a long SUMMARY (1004) to push the header onto overflow pages
        index.append((1004, 6, len(data), 1)); data += b"x" * pad + b"\0"
    out = struct.pack(">II", len(index), len(data))
    for e in index:
        out += struct.pack(">IIII", *e)
    return out + data

def text(b):
    return "".join(chr(c) if 0x21 <= c < 0x7f and c != 0x5c else "\\%02x" % c for c in b)

records = [
    (0, struct.pack("<I", 4)),
    (1, blob("bash", "4.4.20", "4.el8")),
    (2, blob("munge", "0.5.13", "2.el8", pad=9000)),
    (3, blob("gpg-pubkey", "8483c65d", "5ccc5b19")),
]
for k, v in records:
    print(text(struct.pack("<I", k)))
    print(text(v))
