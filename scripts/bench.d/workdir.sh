# Sourced by the bench scripts: the end of a run's temp dir. remove_work_dir NAME DIR unmounts
# whatever is still mounted under DIR (deepest first), then removes DIR, unless a mount
# refused to go (then it says so and keeps DIR: removing through a live mount would reach
# into what it shows).
remove_work_dir() {
  local name=$1 dir=$2 m
  for m in $(awk -v p="$dir/" 'index($5, p) == 1 {print $5}' /proc/self/mountinfo | sort -r); do
    fusermount -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  if awk -v p="$dir/" 'index($5, p) == 1 {f=1} END {exit !f}' /proc/self/mountinfo; then
    echo "$name: mounts remain under $dir; not removing it" >&2
  else
    rm -rf --one-file-system "$dir"
  fi
}
