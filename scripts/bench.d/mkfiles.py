#!/usr/bin/env python3
"""Writes the small-files layer: COUNT files of 1-8 KiB spread evenly over TOP x SUB leaf
directories (TOP + TOP*SUB dirs in all). Content and sizes come from a fixed seed, so every
build of the cache is byte-identical."""
import os
import random
import sys

root, count, top, sub = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(20240601)
leaves = [os.path.join(root, f"d{i:02d}", f"d{j:02d}") for i in range(top) for j in range(sub)]
for leaf in leaves:
    os.makedirs(leaf, exist_ok=True)
for n in range(count):
    leaf = leaves[n % len(leaves)]
    size = rng.randint(1024, 8192)
    with open(os.path.join(leaf, f"f{n:05d}"), "wb") as f:
        f.write(rng.randbytes(size))
