#!/usr/bin/env bash
# Builds (once) the benchmark's three lower layers and its fixtures in the cache.
#   prepare.sh CACHE_DIR MODE      MODE = full | quick
# Writes CACHE_DIR/MODE/:
#   layer1/   full: Debian 12 minbase (debootstrap); quick: a busybox root
#   layer2/   data/big.bin, random data (full: 1 GiB, quick: 100 MiB)
#   layer3/   data/small/dNN/dNN/fNNN, small files of 1-8 KiB (full: 20,000 in 220 dirs)
#   plain/    the three layers merged with cp -a (the "plain directory" contender)
#   small.tar the small-files tree as a tar (the untar row's input)
#   stack.env sizes and counts, read by the runner
# Every step builds into a .tmp name and is renamed into place when complete, with a
# stamp, so an interrupted build is redone and a finished one is never rebuilt.
set -euo pipefail

cache=$1
mode=$2
here=$(cd "$(dirname "$0")" && pwd)
dir=$cache/$mode
mkdir -p "$dir"

# Stack sizes per mode. Bump STACK_VERSION when the recipe changes: it invalidates the cache.
STACK_VERSION=1
if [ "$mode" = full ]; then
  big_mib=1024; small_files=20000; small_top=20; small_sub=10
else
  big_mib=100; small_files=2000; small_top=5; small_sub=4
fi

log() { printf 'bench prepare (%s): %s\n' "$mode" "$*" >&2; }

# A half-finished debootstrap may have left /proc or /sys mounted in its target.
unmount_under() {
  local d=$1 m
  [ -d "$d" ] || return 0
  while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | awk -v p="$d/" 'index($0, p) == 1' | sort -r)
}

stamp_ok() { [ -f "$dir/$1.stamp" ] && [ "$(cat "$dir/$1.stamp")" = "$STACK_VERSION" ]; }
stamp_set() { echo "$STACK_VERSION" > "$dir/$1.stamp"; }
# Drops a step's output (and what depends on it) so it is rebuilt.
invalidate() {
  local s
  for s in "$@"; do
    rm -f "$dir/$s.stamp"
    unmount_under "$dir/$s"
    rm -rf --one-file-system "$dir/$s" "$dir/$s.tmp"
  done
}

cleanup_tmp() { local s; for s in layer1 layer2 layer3 plain; do unmount_under "$dir/$s.tmp"; done; }
trap cleanup_tmp EXIT

# ---- layer 1: the root filesystem ----------------------------------------------------
if ! stamp_ok layer1; then
  invalidate layer1 plain
  t=$dir/layer1.tmp
  if [ "$mode" = full ]; then
    log "debootstrap --variant=minbase bookworm (takes a few minutes)"
    mkdir -p "$t"
    if ! debootstrap --variant=minbase bookworm "$t" http://deb.debian.org/debian \
        > "$dir/debootstrap.log" 2>&1; then
      unmount_under "$t"
      log "debootstrap failed; last lines of $dir/debootstrap.log:"
      tail -n 15 "$dir/debootstrap.log" >&2
      exit 1
    fi
    unmount_under "$t"
    # apt's downloaded .debs are not part of a root anyone ships.
    rm -rf "$t"/var/cache/apt/archives/*.deb
  else
    log "busybox root"
    bb=$(command -v busybox)
    mkdir -p "$t"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/log,proc,sys,dev}
    cp "$bb" "$t/bin/busybox"
    # One symlink per applet, like a busybox image; skip the binary's own name.
    for a in $("$bb" --list-full); do
      [ -e "$t/$a" ] || [ -L "$t/$a" ] || ln -s /bin/busybox "$t/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$t/etc/passwd"
    printf 'root:x:0:\n' > "$t/etc/group"
    chmod 1777 "$t/tmp"
  fi
  mv "$t" "$dir/layer1"
  stamp_set layer1
fi

# ---- layer 2: one big file of random data --------------------------------------------
if ! stamp_ok layer2; then
  invalidate layer2 plain
  log "${big_mib} MiB random file"
  t=$dir/layer2.tmp
  mkdir -p "$t/data"
  head -c "$((big_mib * 1024 * 1024))" /dev/urandom > "$t/data/big.bin"
  mv "$t" "$dir/layer2"
  stamp_set layer2
fi

# ---- layer 3: many small files -------------------------------------------------------
if ! stamp_ok layer3; then
  invalidate layer3 plain small.tar
  log "$small_files small files"
  t=$dir/layer3.tmp
  mkdir -p "$t/data"
  "${PYTHON:-python3}" "$here/mkfiles.py" "$t/data/small" "$small_files" "$small_top" "$small_sub"
  mv "$t" "$dir/layer3"
  stamp_set layer3
fi

# ---- the untar row's input -------------------------------------------------------------
if ! stamp_ok small.tar; then
  rm -f "$dir/small.tar" "$dir/small.tar.tmp"
  tar cf "$dir/small.tar.tmp" -C "$dir/layer3/data" small
  mv "$dir/small.tar.tmp" "$dir/small.tar"
  stamp_set small.tar
fi

# ---- the plain directory: all three layers merged -----------------------------------
if ! stamp_ok plain; then
  invalidate plain
  log "merged plain copy (cp -a)"
  t=$dir/plain.tmp
  mkdir -p "$t"
  for l in layer1 layer2 layer3; do cp -a "$dir/$l/." "$t/"; done
  mv "$t" "$dir/plain"
  stamp_set plain
fi

# ---- what the runner needs to know -------------------------------------------------------
{
  echo "MODE=$mode"
  echo "BIG_REL=data/big.bin"
  echo "BIG_BYTES=$(stat -c %s "$dir/layer2/data/big.bin")"
  echo "SMALL_REL=data/small"
  echo "SMALL_FILES=$(find "$dir/layer3/data/small" -type f | wc -l)"
  echo "SMALL_DIRS=$(find "$dir/layer3/data/small" -type d | wc -l)"
  echo "PLAIN_ENTRIES=$(find "$dir/plain" | wc -l)"
  echo "LAYER1_ENTRIES=$(find "$dir/layer1" | wc -l)"
} > "$dir/stack.env.tmp"
mv "$dir/stack.env.tmp" "$dir/stack.env"
log "ready: $dir"
