#!/usr/bin/env bash
# scripts/bench.d/build.sh: `ufs build` against `buildah build --layers` on the same
# Dockerfiles, base image (ufs's busybox, saved and given to buildah as a docker-archive) and
# context, in one run (called by scripts/bench). Rows, each the median of N runs:
#   cold       --no-cache
#   warm       everything cached
#   last-copy  the last COPYed file changed (only that step and the ones after it run)
# for a 10-step single-stage Dockerfile and a two-stage one. buildah uses the overlay storage
# driver when it works here, else vfs (named in the table).
# Options: --runs N (default 3). Environment: UFS_BENCH_MAIN (the CLI, default bin/ufs.cjs, the `ufs` command).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
main=${UFS_BENCH_MAIN:-$repo/bin/ufs.cjs}
runs=3
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --runs=*) runs=${1#*=} ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "scripts/bench.d/build.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "build.sh: --runs wants a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "build.sh: run as root" >&2; exit 1; }
[ -f "$main" ] || { echo "build.sh: $main not built (npm run build)" >&2; exit 1; }
command -v buildah >/dev/null || { echo "build.sh: buildah is not installed" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ufs-bench-build.XXXXXX")
export UFS_ROOT=$work/root UFS_RUN_DIR=$work/run
mkdir -p "$UFS_RUN_DIR"
ufs() { node "$main" "$@"; }
driver=overlay
bh() { buildah --root "$work/bh/root" --runroot "$work/bh/run" --storage-driver "$driver" "$@"; }

. "$(dirname "${BASH_SOURCE[0]}")/workdir.sh"
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  bh rm --all >/dev/null 2>&1 || true
  bh rmi --all --force >/dev/null 2>&1 || true
  remove_work_dir build.sh "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s%N; }
progress() { [ -t 2 ] && printf '\rscripts/bench.d/build.sh: %s   ' "$*" >&2 || true; }

ufs save busybox -o "$work/busybox.tar"
if ! bh from --name probe "docker-archive:$work/busybox.tar" >/dev/null 2>&1; then
  bh rm --all >/dev/null 2>&1 || true
  driver=vfs
else
  bh rm probe >/dev/null
fi

# The context: a few files, 2 MB of data, the Dockerfiles (FROM is the only difference).
ctx=$work/ctx
mkdir -p "$ctx/src" "$ctx/data"
for i in $(seq 1 50); do echo "file $i" > "$ctx/src/f$i.txt"; done
head -c 2000000 /dev/urandom > "$ctx/data/blob.bin"
echo v0 > "$ctx/last.txt"
single() { cat <<EOF
FROM $1
ENV APP=/app
WORKDIR /app
COPY src/ ./src/
RUN mkdir -p out && cat src/*.txt > out/all.txt
COPY data/blob.bin ./data/
RUN md5sum data/blob.bin > out/sum
LABEL bench=single
COPY last.txt ./
CMD ["cat", "/app/last.txt"]
EOF
}
twostage() { cat <<EOF
FROM $1 AS builder
WORKDIR /w
COPY src/ ./src/
RUN cat src/*.txt > all.txt && md5sum all.txt > sum
COPY last.txt ./
RUN cp last.txt copied.txt
FROM $1
COPY --from=builder /w/sum /w/copied.txt /app/
CMD ["cat", "/app/copied.txt"]
EOF
}
single busybox > "$work/single.ufs"; single "docker-archive:$work/busybox.tar" > "$work/single.bh"
twostage busybox > "$work/two.ufs"; twostage "docker-archive:$work/busybox.tar" > "$work/two.bh"

ms_of() { local t0 t1; t0=$(now); "$@" >/dev/null 2>&1 || { echo "build.sh: failed: $*" >&2; exit 1; }; t1=$(now); echo $(( (t1 - t0) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2] + a[NR/2+1]) / 2)}'; }

# One measurement of one row for one tool; $2 = df base name.
measure() {
  local tool=$1 df=$2 row=$3 f
  if [ "$tool" = ufs ]; then f=(ufs build -q -f "$work/$df.ufs" -t "bench-$df"); else f=(bh build --layers -q -f "$work/$df.bh" -t "bench-$df"); fi
  case $row in
    cold) ms_of "${f[@]}" --no-cache "$ctx" ;;
    warm) "${f[@]}" "$ctx" >/dev/null 2>&1; ms_of "${f[@]}" "$ctx" ;;
    last-copy) "${f[@]}" "$ctx" >/dev/null 2>&1; echo "v$(now)" > "$ctx/last.txt"; ms_of "${f[@]}" "$ctx" ;;
  esac
}

printf '| build | ufs (ms) | buildah --layers, %s (ms) | ufs / buildah |\n|---|---:|---:|---:|\n' "$driver"
for df in single two; do
  for row in cold warm last-copy; do
    u=(); b=()
    for i in $(seq 1 "$runs"); do
      progress "$df $row run $i/$runs"
      u+=("$(measure ufs "$df" "$row")")
      b+=("$(measure buildah "$df" "$row")")
    done
    um=$(printf '%s\n' "${u[@]}" | median); bm=$(printf '%s\n' "${b[@]}" | median)
    name=$([ "$df" = single ] && echo "10-step single-stage" || echo "two-stage")
    printf '| %s, %s | %s | %s | %s |\n' "$name" "$row" "$um" "$bm" "$(awk -v a="$um" -v b="$bm" 'BEGIN { printf "%.2f", a / b }')"
  done
done
[ -t 2 ] && printf '\r\033[K' >&2 || true
printf '\nload average during the run: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
