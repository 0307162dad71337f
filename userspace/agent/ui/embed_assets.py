#!/usr/bin/env python3
"""Turns the /ui page's files into a C++ source (agent/ui_assets.h's table),
so sluiced serves them from its own binary: no files to install, no CDN.

usage: embed_assets.py OUTPUT.cc FILE...   (each FILE served as /ui/<name>)
"""
import os
import sys

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


def main() -> int:
    out_path, inputs = sys.argv[1], sys.argv[2:]
    parts = ['#include "agent/ui_assets.h"', "", "namespace sluice::agent {", "", "namespace {", ""]
    table = []
    for i, path in enumerate(inputs):
        name = os.path.basename(path)
        ext = os.path.splitext(name)[1]
        if ext not in CONTENT_TYPES:
            print(f"embed_assets.py: {path}: no content type for '{ext}'", file=sys.stderr)
            return 1
        data = open(path, "rb").read()
        body = ",".join(str(b if b < 128 else b - 256) for b in data)   # char may be signed
        parts.append(f"constexpr char kAsset{i}[] = {{{body}}};")
        table.append(f'    {{"/ui/{name}", "{CONTENT_TYPES[ext]}", {{kAsset{i}, sizeof kAsset{i}}}}},')
    parts += ["", "constexpr UiAsset kAssets[] = {"] + table + ["};", "", "}  // namespace", ""]
    parts += ["std::span<const UiAsset> ui_assets() { return kAssets; }", "", "}  // namespace sluice::agent", ""]
    with open(out_path, "w") as f:
        f.write("\n".join(parts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
