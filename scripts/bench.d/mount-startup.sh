#!/usr/bin/env bash
# scripts/bench.d/mount-startup.sh: how long a union mount takes to come up and go again:
# `mount -t fuse.ufs` (this checkout's C helper, native/build/Release/ufs-mount-helper, what
# /sbin/mount.fuse.ufs links to), `ufs mount`/`ufs umount`, against fuse-overlayfs on the
# same layers, each followed by its unmount, measured by hyperfine in the same run (called by
# scripts/bench; runs alone too). Then the serving process's memory with that small mount
# up. Temp dirs, removed on exit. Needs root.
# Options: --runs N (default 20). Environment: UFS_BENCH_MAIN (the CLI, default bin/ufs.cjs, the `ufs` command).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
main=${UFS_BENCH_MAIN:-$repo/bin/ufs.cjs}
helper=$repo/native/build/Release/ufs-mount-helper
runs=20
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --runs=*) runs=${1#*=} ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "mount-startup: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "mount-startup: --runs wants a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "mount-startup: run as root" >&2; exit 1; }
for tool in hyperfine fuse-overlayfs; do command -v $tool >/dev/null || { echo "mount-startup: needs $tool (scripts/setup)" >&2; exit 1; }; done
[ -x "$helper" ] && [ -f "$main" ] || { echo "mount-startup: build first (npm install, npm run build)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ufs-bench-mount.XXXXXX")
export UFS_RUN_DIR=$work/run
cleanup() {
  local m
  for m in $(awk -v p="$work/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null || true; done
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
mkdir -p "$work"/{l1,l2,upper,work,mnt,run}
for i in $(seq 1 200); do echo "$i" > "$work/l1/f$i"; done
mkdir -p "$work/l2/etc" && echo x > "$work/l2/etc/hostname"
opts="lowerdir=$work/l1:$work/l2,upperdir=$work/upper,workdir=$work/work"

hyperfine --style none -w 2 -r "$runs" --export-json "$work/h.json" \
  -n "mount -t fuse.ufs (C helper)" "$helper ufs $work/mnt -o $opts && umount $work/mnt" \
  -n "ufs mount" "node $main mount --lower $work/l1 --lower $work/l2 --upper $work/upper $work/mnt && node $main umount $work/mnt" \
  -n "fuse-overlayfs" "fuse-overlayfs -o $opts $work/mnt && umount $work/mnt" >/dev/null 2>&1
load=$(cut -d' ' -f1-3 /proc/loadavg)

# The serving process with the mount up: RSS and anonymous memory, ufs and fuse-overlayfs.
mem() { awk -v f="$1" '$1 == f":" {printf "%.1f", $2/1024}' "/proc/$2/status"; }
"$helper" ufs "$work/mnt" -o "$opts"
ls -R "$work/mnt" >/dev/null
upid=$(node -e 'const fs=require("fs"),d=process.argv[1];for(const f of fs.readdirSync(d))if(f.endsWith(".json"))console.log(JSON.parse(fs.readFileSync(d+"/"+f)).pid)' "$UFS_RUN_DIR/mounts" | head -1)
urss=$(mem VmRSS "$upid") uanon=$(mem RssAnon "$upid")
umount "$work/mnt"
fuse-overlayfs -o "$opts" "$work/mnt"
ls -R "$work/mnt" >/dev/null
fpid=$(pgrep -n -f "fuse-overlayfs -o $opts" || true)
frss=$([ -n "$fpid" ] && mem VmRSS "$fpid" || echo 0) fanon=$([ -n "$fpid" ] && mem RssAnon "$fpid" || echo 0)
umount "$work/mnt"

node - "$work/h.json" "$load" "$runs" "$urss" "$frss" "$uanon" "$fanon" <<'NODE'
const [file, load, runs, urss, frss, uanon, fanon] = process.argv.slice(2);
const r = JSON.parse(require('fs').readFileSync(file, 'utf8')).results;
const ms = (x) => Math.round(x.median * 1000);
const peer = ms(r[2]);
const row = (a, b, c, d) => console.log(`| ${a.padEnd(62)} | ${b.padStart(10)} | ${c.padStart(10)} | ${d.padStart(8)} |`);
row(`union mount up + down vs fuse-overlayfs (load ${load})`, 'ufs', 'f-o', 'ufs/f-o');
console.log(`|${'-'.repeat(64)}|${'-'.repeat(12)}|${'-'.repeat(12)}|${'-'.repeat(10)}|`);
for (const x of r.slice(0, 2)) row(`${x.command} (median of ${runs})`, `${ms(x)} ms`, `${peer} ms`, (ms(x) / peer).toFixed(2));
row('RSS of the serving process (200 files listed)', `${urss} MB`, `${frss} MB`, (urss / frss).toFixed(1));
row('  of which anonymous (RssAnon)', `${uanon} MB`, `${fanon} MB`, (uanon / fanon).toFixed(1));
NODE
