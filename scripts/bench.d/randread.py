#!/usr/bin/env python3
"""randread.py FILE COUNT: COUNT preads of 4 KiB at 4 KiB-aligned offsets drawn from a fixed
seed (the same offsets for every contender). Prints "COUNT CRC32" of all the data read, so the
runner can check that every filesystem returned the same bytes."""
import os
import random
import sys
import zlib

path, count = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_RDONLY)
pages = os.fstat(fd).st_size // 4096
rng = random.Random(4096)
crc = 0
for _ in range(count):
    data = os.pread(fd, 4096, rng.randrange(pages) * 4096)
    if len(data) != 4096:
        sys.exit(f"short read: {len(data)} bytes")
    crc = zlib.crc32(data, crc)
os.close(fd)
print(count, crc)
