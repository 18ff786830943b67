#!/usr/bin/env bash
# scripts/bench.d/network.sh: what a network mode adds to a container's start, ufs against
# podman in the same run: `run --rm --network bridge|none|host busybox true`, median of N
# runs after one warm-up each, and ufs/podman ratios. Called by scripts/bench (extras).
# ufs uses a temp store whose default bridge has its own name and a free /24 (never ufs0);
# podman a temp --root/--runroot with the same busybox image (ufs save | podman load) on its
# default network, with rlimits this VM allows. Options: --runs N (default 10). Environment: UFS_BENCH_MAIN (the CLI).
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
main=${UFS_BENCH_MAIN:-$repo/dist/src/cli/main.js}
runs=10
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=${2:?--runs needs a number}; shift ;;
    --runs=*) runs=${1#*=} ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "scripts/bench.d/network.sh: unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "network.sh: --runs wants a positive number" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "network.sh: run as root" >&2; exit 1; }
[ -f "$main" ] || { echo "network.sh: $main not built (npm run build)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/ufs-bench-network.XXXXXX")
export UFS_ROOT=$work/root UFS_RUN_DIR=$work/run
mkdir -p "$UFS_RUN_DIR"
ufs() { node "$main" "$@"; }
have_podman=0
command -v podman >/dev/null 2>&1 && have_podman=1
pod() { podman --root "$work/podman/root" --runroot "$work/podman/run" --cgroup-manager cgroupfs --events-backend none "$@"; }
# podman's default rlimits (nofile 1048576, nproc 32768) are refused in this VM: give ones it takes.
pod_limits=(--ulimit "nofile=1024:$(ulimit -Hn)" --ulimit nproc=1024:1024)

cleanup() {
  local rc=$? ids m
  trap - EXIT INT TERM
  if [ -d "$UFS_ROOT/containers" ]; then
    ids=$(ls "$UFS_ROOT/containers" | grep -E '^[0-9a-f]{64}$' || true)
    [ -z "$ids" ] || ufs rm -f $ids >/dev/null 2>&1 || true
  fi
  # whatever a failed run left attached in this store (namespaces, veths, rules, leases)
  node --input-type=module -e "
    const { Store } = await import('$repo/dist/src/store/index.js');
    const N = await import('$repo/dist/src/network/index.js');
    await N.reconcile(await Store.open(process.env.UFS_ROOT), () => false);" >/dev/null 2>&1 || true
  if [ "$have_podman" = 1 ] && [ -d "$work/podman" ]; then
    pod rm -af >/dev/null 2>&1 || true
    pod rmi -af >/dev/null 2>&1 || true
    for m in $(awk -v p="$work/podman/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null || true; done
  fi
  for m in $(awk -v p="$work/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    fusermount -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if awk -v p="$work/" 'index($5, p) == 1 {f=1} END {exit !f}' /proc/self/mountinfo; then
    echo "network.sh: mounts remain under $work; not removing it" >&2
  else
    rm -rf --one-file-system "$work"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s%N; }
progress() { [ -t 2 ] && printf '\rnetwork.sh: %s   ' "$*" >&2 || true; }
median() { sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.0f", (a[NR/2] + a[NR/2+1]) / 2 }'; }

# This store's default bridge: a unique name and the first /24 of 10.93.0.0/16 the host does not route.
node --input-type=module -e "
  const { Store } = await import('$repo/dist/src/store/index.js');
  const N = await import('$repo/dist/src/network/index.js');
  const { execFileSync } = await import('node:child_process');
  const used = execFileSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' });
  let subnet;
  for (let i = 0; i < 256 && !subnet; i++) if (!used.includes('10.93.' + i + '.')) subnet = '10.93.' + i + '.0/24';
  await N.ensureDefaultNetwork(await Store.open(process.env.UFS_ROOT), { bridge: 'ufsb' + process.pid, subnet });"

# time_runs CMD...: N timed runs after one warm-up; prints the median in ms, or n/a if it fails.
time_runs() {
  local t0 t1 i out=()
  "$@" >/dev/null 2>"$work/err" || { echo "n/a($(tail -n 1 "$work/err" | cut -c1-60))"; return; }
  for i in $(seq 1 "$runs"); do
    t0=$(now); "$@" >/dev/null 2>&1 || { echo n/a; return; }; t1=$(now)
    out+=("$(( (t1 - t0) / 1000000 ))")
  done
  printf '%s\n' "${out[@]}" | median
}

progress "busybox:latest"
ufs run --rm --network none busybox true
if [ "$have_podman" = 1 ]; then
  progress "podman load"
  ufs save -o "$work/busybox.tar" busybox:latest
  pod load -q -i "$work/busybox.tar" >/dev/null
fi

declare -A U P
for mode in bridge none host; do
  progress "ufs --network $mode"
  U[$mode]=$(time_runs ufs run --rm --network "$mode" busybox true)
  if [ "$have_podman" = 1 ]; then
    progress "podman --network $mode"
    P[$mode]=$(time_runs pod run --rm "${pod_limits[@]}" --network "$mode" busybox:latest true)
  else
    P[$mode]=n/a
  fi
done
[ -t 2 ] && printf '\r%60s\r' '' >&2 || true

ratio() { [[ $1 =~ ^[0-9]+$ && $2 =~ ^[0-9]+$ && $2 -gt 0 ]] && awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }' || echo '-'; }
printf '| %-46s | %10s | %10s | %10s |\n' "run --rm busybox true (median of $runs)" 'ufs' 'podman' 'ufs/podman'
printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' $(seq 1 48))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 12))" "$(printf -- '-%.0s' $(seq 1 12))"
for mode in bridge none host; do
  printf '| %-46s | %7s ms | %7s ms | %10s |\n' "--network $mode" "${U[$mode]}" "${P[$mode]}" "$(ratio "${U[$mode]}" "${P[$mode]}")"
done
for mode in bridge; do
  if [[ ${U[$mode]} =~ ^[0-9]+$ && ${U[none]} =~ ^[0-9]+$ && ${P[$mode]} =~ ^[0-9]+$ && ${P[none]} =~ ^[0-9]+$ ]]; then
    printf '| %-46s | %7s ms | %7s ms | %10s |\n' "what the bridge adds (bridge - none)" "$(( U[$mode] - U[none] ))" "$(( P[$mode] - P[none] ))" "$(ratio "$(( U[$mode] - U[none] ))" "$(( P[$mode] - P[none] ))")"
  fi
done
