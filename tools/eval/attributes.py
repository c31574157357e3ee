#!/usr/bin/env python3
"""Attribute figures on faces-dev with `facegate analyze --json` (Python standard library only):

    python3 tools/eval/attributes.py [--facegate target/release/facegate] [--data ../shared/eval/faces-dev]
        [--models DIR] [--per-image]

- gender accuracy per image on identity/ against tools/eval/faces-dev-gender.csv (labelled by eye,
  see its header); the largest analysed face of each photo is the person's;
- the age estimates per identity (no ground truth: a sanity check only);
- the distribution of the dominant expression over every analysed face of group/.
"""

import argparse
import csv
import json
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def analyze(facegate, models, paths):
    cmd = [str(facegate)] + (["--models", str(models)] if models else []) + ["analyze", "--json"] + [str(p) for p in paths]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode not in (0, 1):
        sys.exit(f"facegate analyze failed ({out.returncode}): {out.stderr.strip()}")
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--facegate", default=ROOT / "target/release/facegate", type=Path)
    ap.add_argument("--data", default=ROOT / "../shared/eval/faces-dev", type=Path)
    ap.add_argument("--models", type=Path)
    ap.add_argument("--per-image", action="store_true", help="print every identity photo's estimate")
    args = ap.parse_args()
    if not (args.data / "identity").is_dir():
        sys.exit(f"{args.data}/identity not found: pass --data with the faces-dev folder")
    labels_file = Path(__file__).with_name("faces-dev-gender.csv")
    labels = {r["identity"]: r["gender"] for r in csv.DictReader(l for l in labels_file.open() if not l.startswith("#"))}

    photos = sorted(p for p in (args.data / "identity").glob("*/*") if p.is_file())
    missing = sorted({p.parent.name for p in photos} - labels.keys())
    if missing:
        sys.exit(f"no gender label for {missing} in {labels_file}")
    results = analyze(args.facegate, args.models, photos)
    right, total, errors = Counter(), Counter(), []
    ages = defaultdict(list)
    for photo, r in zip(photos, results):
        want = labels[photo.parent.name]
        total[want] += 1
        if not r["faces"]:
            errors.append(f"{photo.relative_to(args.data)}: {r.get('error', 'no face')}")
            continue
        face = max(r["faces"], key=lambda f: f["region"]["w"] * f["region"]["h"])
        right[want] += face["dominant_gender"] == want
        ages[photo.parent.name].append(face["age"])
        if args.per_image:
            print(f"  {photo.relative_to(args.data)}: {face['dominant_gender']} {face['gender'][face['dominant_gender']]:.0f}% "
                  f"(label {want}), age {face['age']:.0f}, {face['dominant_emotion']}")
    n, ok = sum(total.values()), sum(right.values())
    print(f"gender on {args.data / 'identity'}: {ok}/{n} photos right ({100 * ok / n:.1f}%); "
          + ", ".join(f"{g} {right[g]}/{total[g]}" for g in sorted(total))
          + (f"; {len(errors)} photo(s) without an analysed face count as wrong" if errors else ""))
    for e in errors:
        print(f"  not analysed: {e}")
    print("age estimates per identity (years; no ground truth):")
    for name in sorted(ages):
        print(f"  {name}: " + ", ".join(f"{a:.0f}" for a in ages[name]))

    groups = sorted(p for p in (args.data / "group").glob("*") if p.is_file())
    results = analyze(args.facegate, args.models, groups)
    counts = Counter(f["dominant_emotion"] for r in results for f in r["faces"])
    faces = sum(counts.values())
    skipped = sum(len(r.get("skipped", [])) for r in results)
    print(f"dominant expression over {faces} faces of {len(groups)} group photos ({skipped} faces too small to analyse): "
          + ", ".join(f"{e} {counts[e]} ({100 * counts[e] / max(faces, 1):.0f}%)" for e in EMOTIONS))


if __name__ == "__main__":
    main()
