#!/usr/bin/env bash
# Differential check of container isolation: the same probes under `docker run` (Docker 20.10)
# and `strata run`, side by side (opt-in: needs /usr/bin/docker and busybox:local from
# ../shared/tools/anchors-up, gcc + libc6-dev for the static syscall probe).
#
# Probes: every syscall of tests/probe/syscall_probe.c, /proc/self/status fields (Seccomp,
# NoNewPrivs, capabilities, Groups, SigIgn/SigBlk), masked paths, the /sys and /sys/fs/cgroup
# mounts, device nodes, descriptors, limits, a cwd through /proc/self/fd, the loosening flags.
# Rows marked "known" differ on purpose (see docs/SECURITY.md); any other difference makes
# the script exit 1.
#
#   crates/strata/tests/differential/security.sh          # STRATA_BIN=... to test another build
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
docker=${DOCKER:-/usr/bin/docker}
"$docker" info >/dev/null
if [ -z "${STRATA_BIN:-}" ]; then
  target=${CARGO_TARGET_DIR:-$repo/target}
  CARGO_TARGET_DIR=$target cargo build -q --manifest-path "$repo/Cargo.toml" -p strata
  STRATA_BIN=$target/debug/strata
fi

work=$(mktemp -d)
root=$work/root
strata() { "$STRATA_BIN" --root "$root" "$@"; }
cleanup() {
  "$docker" rmi -f strata-sec-probe:local >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# The probe image, for both.
mkdir -p "$work/ctx"
cc -static -O2 -o "$work/ctx/probe" "$repo/crates/strata/tests/probe/syscall_probe.c"
printf 'FROM busybox:local\nCOPY probe /probe\n' >"$work/ctx/Dockerfile"
DOCKER_BUILDKIT=1 "$docker" build -q -t strata-sec-probe:local "$work/ctx" >/dev/null
strata import -c 'CMD ["sh"]' "${BUSYBOX_TAR:-/var/tmp/anchors/busybox-rootfs.tar}" busybox:local >/dev/null
strata build -q -t strata-sec-probe:local "$work/ctx" >/dev/null

# Known, deliberate differences (row names).
declare -A known=(
  ["NoNewPrivs"]="strata sets no_new_privs by default"
  ["/proc/self/cgroup (memory)"]="strata gives every container a private cgroup namespace"
  ["--privileged CapEff"]="Docker fails where strata runs without CAP_SYS_RESOURCE"
  ["--privileged Seccomp"]="Docker fails where strata runs without CAP_SYS_RESOURCE"
)

rows=()
differences=0
# row NAME DOCKER STRATA
row() {
  set -- "$1" "${2//$'\t'/ }" "${3//$'\t'/ }"
  local mark=same
  if [ "$2" != "$3" ]; then
    if [ -n "${known[$1]:-}" ]; then mark="known: ${known[$1]}"; else mark=DIFFERENT; differences=$((differences + 1)); fi
  fi
  rows+=("$1"$'\t'"$2"$'\t'"$3"$'\t'"$mark")
}

# both FLAGS... -- SCRIPT: runs SCRIPT with sh -c under both; sets $d and $s (output or
# "exit N" when the container failed to start or exited non-zero with no output).
both() {
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  d=$("$docker" run --rm "${flags[@]}" strata-sec-probe:local sh -c "$1" 2>/dev/null) || d="${d:-exit $?}"
  s=$(strata run --rm "${flags[@]}" strata-sec-probe:local sh -c "$1" 2>/dev/null) || s="${s:-exit $?}"
}

# direct FLAGS... -- COMMAND...: like `both`, without a shell in between.
direct() {
  local flags=()
  while [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  d=$("$docker" run --rm "${flags[@]}" strata-sec-probe:local "$@" 2>/dev/null) || d="${d:-exit $?}"
  s=$(strata run --rm "${flags[@]}" strata-sec-probe:local "$@" 2>/dev/null) || s="${s:-exit $?}"
}

field() { awk -v f="$1:" '$1 == f { $1 = ""; sub(/^ /, ""); print }' <<<"$2"; }

# Syscalls.
both -- /probe
while read -r name result; do
  row "$name" "$result" "$(awk -v n="$name" '$1 == n { print $2 }' <<<"$s")"
done <<<"$d"

# /proc/self/status (of the container's process itself: a shell's children may see it ignore
# SIGQUIT).
direct -- cat /proc/self/status
for f in Seccomp NoNewPrivs CapEff CapBnd CapInh CapAmb Groups SigIgn SigBlk; do
  row "$f" "$(field "$f" "$d")" "$(field "$f" "$s")"
done
direct -u 1000:1000 -- cat /proc/self/status
row "Groups (-u 1000:1000)" "$(field Groups "$d")" "$(field Groups "$s")"
row "CapEff (-u 1000:1000)" "$(field CapEff "$d")" "$(field CapEff "$s")"

# Masked and read-only paths.
for p in /proc/kcore /proc/keys /proc/timer_list /proc/sched_debug /proc/latency_stats; do
  both -- "if [ -e $p ]; then wc -c < $p; else echo absent; fi"
  row "size of $p" "$d" "$s"
done
both -- 'ls -A /sys/firmware | wc -l'
row "entries in /sys/firmware" "$d" "$s"
both -- 'echo 1 > /proc/sys/vm/drop_caches 2>/dev/null && echo written || echo refused'
row "write /proc/sys" "$d" "$s"
both -- "awk '\$2 == \"/sys\" { split(\$4, o, \",\"); print o[1] }' /proc/mounts"
row "/sys mount" "$d" "$s"

# Cgroups.
both -- "awk '\$2 == \"/sys/fs/cgroup/memory\" { split(\$4, o, \",\"); m = o[1] } END { print m ? m : \"absent\" }' /proc/mounts"
row "/sys/fs/cgroup/memory mount" "$d" "$s"
both --pids-limit 50 -- 'echo max > /sys/fs/cgroup/pids/pids.max 2>/dev/null && echo written || echo refused'
row "write pids.max" "$d" "$s"
both --pids-limit 50 -- '/probe fork 200'
row "--pids-limit 50, fork 200" "$d" "$s"
both --memory 64m -- 'cat /sys/fs/cgroup/memory/memory.memsw.limit_in_bytes'
row "--memory 64m memsw limit" "$d" "$s"
both -- "awk -F: '\$2 == \"memory\" { print (\$3 == \"/\" ? \"/\" : \"host path\") }' /proc/self/cgroup"
row "/proc/self/cgroup (memory)" "$d" "$s"

# Devices and descriptors.
both -- 'ls /dev | sort | tr "\n" " "'
row "/dev" "$d" "$s"
both -- 'mknod /tmp/sda b 8 0 2>/dev/null; head -c1 /tmp/sda >/dev/null 2>&1 && echo opened || echo refused'
row "open a block device made with mknod" "$d" "$s"
both -- 'for f in 0 1 2; do readlink /proc/self/fd/$f | sed "s/:\[.*//"; done | tr "\n" " "'
row "fds 0 1 2" "$d" "$s"

# Working directory through an inherited descriptor.
for fd in 3 5 8; do
  both -w /proc/self/fd/$fd -- 'ls ../../../../../../ >/dev/null 2>&1 && echo host-listed || echo in'
  row "-w /proc/self/fd/$fd" "$d" "$s"
done

# Signals.
both -- 'yes | head -1 2>&1'
row "yes | head -1" "$d" "$s"

# Loosening on purpose.
both --cap-add SYS_ADMIN -- '/probe | grep -E "^(unshare\(CLONE_NEWNS\)|clone3|keyctl) " | tr "\n" " "'
row "--cap-add SYS_ADMIN" "$d" "$s"
both --cap-drop ALL --cap-add NET_BIND_SERVICE -- 'grep CapEff /proc/self/status'
row "--cap-drop ALL --cap-add NET_BIND_SERVICE" "$d" "$s"
both --security-opt seccomp=unconfined -- 'grep Seccomp: /proc/self/status'
row "seccomp=unconfined" "$d" "$s"
both --privileged -- 'grep Seccomp: /proc/self/status'
row "--privileged Seccomp" "$d" "$s"
both --privileged -- 'grep CapEff /proc/self/status'
row "--privileged CapEff" "$d" "$s"

# The table.
{
  printf 'PROBE\tDOCKER 20.10\tSTRATA\t\n'
  printf '%s\n' "${rows[@]}"
} | awk -F'\t' '{ printf "%-42s %-26s %-26s %s\n", substr($1, 1, 42), substr($2, 1, 26), substr($3, 1, 26), $4 }'
echo
if [ "$differences" -eq 0 ]; then
  echo "security probes: ${#rows[@]} compared, no unexpected difference"
else
  echo "security probes: ${#rows[@]} compared, $differences unexpected difference(s)"
  exit 1
fi
