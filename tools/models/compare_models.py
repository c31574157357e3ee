#!/usr/bin/env python3
"""Compares two model folders file by file: byte-identical, or numerically equivalent outputs.

    python compare_models.py COMMITTED_DIR REGENERATED_DIR

Every model in COMMITTED_DIR/manifest.toml is run on the same random inputs in both folders;
prints, per file, "identical", or the largest output difference. Exit code 1 if any output
differs by more than the tolerance (1e-4 for fp32, 0.05 relative for int8 files).
"""
import hashlib
import sys
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main():
    a, b = Path(sys.argv[1]), Path(sys.argv[2])
    manifest = tomllib.loads((a / "manifest.toml").read_text())
    rng = np.random.default_rng(7)
    worst_fail = False
    for entry in manifest["model"]:
        fa, fb = a / entry["file"], b / entry["file"]
        if not fb.exists():
            print(f"{entry['file']}: not regenerated")
            worst_fail = True
            continue
        if digest(fa) == digest(fb):
            print(f"{entry['file']}: identical (sha256 {digest(fb)})")
            continue
        shape = [2 if d == -1 else d for d in entry["input"]["shape"]]
        if entry["role"] == "pnet":
            shape = [1, 64, 48, 3]
        x = rng.uniform(-1, 1, size=shape).astype(np.float32)
        outs = []
        for f in (fa, fb):
            s = ort.InferenceSession(str(f), providers=["CPUExecutionProvider"])
            outs.append(s.run(None, {entry["input"]["name"]: x}))
        diff = max(float(np.abs(p - q).max()) for p, q in zip(*outs))
        scale = max(float(np.abs(p).max()) for p in outs[0])
        tolerance = 1e-4 if entry["variant"] == "fp32" else 0.05 * scale
        ok = diff <= tolerance
        worst_fail |= not ok
        print(f"{entry['file']}: bytes differ (sha256 {digest(fb)}); max output difference {diff:.2e} "
              f"({'within' if ok else 'OUTSIDE'} tolerance {tolerance:.1e})")
    sys.exit(1 if worst_fail else 0)


if __name__ == "__main__":
    main()
