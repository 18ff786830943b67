# Sourced by the bench scripts that measure ufs against podman in one run (commit.sh,
# runtime-peers.sh). Makes a temp work dir holding ufs's store and podman's own root, a
# containers.conf podman starts with here (runc, cgroupfs, ulimits no higher than this
# shell's hard limits, networks of its own), a cleanup trap that removes both (containers,
# mounts, then the dir), and timing helpers.
# Needs: $name (for messages) and $main (the CLI). Sets: work, UFS_ROOT, UFS_RUN_DIR,
# CONTAINERS_CONF. Defines: ufs, pod, now, ms, median, progress.

work=$(mktemp -d "${TMPDIR:-/tmp}/ufs-bench-$name.XXXXXX")
export UFS_ROOT=$work/ufs UFS_RUN_DIR=$work/run
mkdir -p "$UFS_RUN_DIR"
ufs() { node "$main" "$@"; }
hard_nofile=$(ulimit -Hn); hard_nproc=$(ulimit -Hu)
# At most the hard limit (nproc at most 4096: runc could not set it to this shell's hard
# limit here, without CAP_SYS_RESOURCE).
cap() { if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi; }
cat > "$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=$(cap "$hard_nofile" 1048576):$(cap "$hard_nofile" 1048576)", "nproc=$(cap "$hard_nproc" 4096):$(cap "$hard_nproc" 4096)"]
[network]
network_config_dir = "$work/networks"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
export CONTAINERS_CONF=$work/containers.conf
pod() { podman --root "$work/podman" --runroot "$work/podman-run" --storage-driver overlay "$@"; }

. "$(dirname "${BASH_SOURCE[0]}")/workdir.sh"
cleanup() {
  local rc=$? ids
  trap - EXIT INT TERM
  pod rm -af >/dev/null 2>&1 || true
  pod system reset -f >/dev/null 2>&1 || true
  if [ -d "$UFS_ROOT/containers" ]; then
    ids=$(ls "$UFS_ROOT/containers" | grep -E '^[0-9a-f]{64}$' || true)
    [ -z "$ids" ] || ufs rm -f $ids >/dev/null 2>&1 || true
  fi
  remove_work_dir "$name" "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b - a) / 1e6 }'; }
median() { sort -n | awk '{a[NR]=$1} END { if (NR % 2) print a[(NR+1)/2]; else printf "%.0f", (a[NR/2] + a[NR/2+1]) / 2 }'; }
progress() { [ -t 2 ] && printf '\r%s: %s   ' "$name" "$*" >&2 || true; }
