#!/usr/bin/env python3
"""Writes N node reports derived from one real report (a nodecheck run's
JSON): node names node00001..., every 97th node failing its first passing
control with one message, every 1000th node erroring, every 10th node on
another image release. Usage: generate.py BASE.json OUTDIR N"""
import json
import os
import sys

base_path, out, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
base = json.load(open(base_path))
os.makedirs(out, exist_ok=True)
first_pass = next(i for i, c in enumerate(base["controls"]) if c["status"] == "pass")


def variant(kind):
    d = json.loads(json.dumps(base))
    d["target"]["name"] = "@NODE@"
    d["hostname"] = "@NODE@"
    d["target"]["image_release"] = "@RELEASE@"
    if kind:
        c = d["controls"][first_pass]
        c["status"] = kind
        for k in c["checks"]:
            k["status"] = kind
            for p in k["properties"]:
                p["status"] = kind
                p["message"] = "injected %s: expected 0400, got 0644" % kind
    return json.dumps(d, indent=2) + "\n"


texts = {k: variant(k) for k in (None, "fail", "error")}
total = 0
for i in range(1, n + 1):
    kind = "error" if i % 1000 == 0 else "fail" if i % 97 == 0 else None
    name = "node%05d" % i
    release = "img-2026.06" if i % 10 == 0 else "img-2026.07"
    text = texts[kind].replace("@NODE@", name).replace("@RELEASE@", release)
    with open(os.path.join(out, name + ".json"), "w") as f:
        f.write(text)
    total += len(text)
print(total)
