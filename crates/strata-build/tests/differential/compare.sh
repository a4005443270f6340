#!/usr/bin/env bash
# Opt-in differential check: builds each case under cases/ with Docker 20.10 + BuildKit and with
# strata, then compares the exported images (compare.py: flattened tree and each new layer as
# path, type, mode, uid/gid, size, content hash, link target; the config object; history).
# Needs the reference tools (`/work/shared/tools/anchors-up`: Docker 20.10 and `busybox:local`,
# whose rootfs tar strata imports too) and a built strata (STRATA, default: target/debug/strata).
# A case may have `build-args` (one NAME=value a line), `build-flags` (extra flags for both
# builders, e.g. --secret), `skip-layers` (layer lists not to compare, with a reason) and
# `known-differences` (compare.py's exact output lines that are expected, after a `# why`
# line: the case then reads "known", and any other difference still fails it).
# STRATA_STORAGE_DRIVER=vfs compares strata's vfs driver instead of overlay.
# Known difference (run-whiteouts): Docker 20.10's layer writer gives a second whiteout entry
# the first one's name as linkname (a regular-file header); strata writes none. Same files.
# Security-relevant cases: run-bind-symlinks (bind sources that are links resolve inside the
# context or stage, `rw` writes are discarded), run-network (RUN steps cannot reach the host's
# loopback services: the reference registry on 127.0.0.1:5000 must be up).
# Usage: compare.sh [case...]   (default: every case). Exit 1 if any case differs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../../.." && pwd)
docker=${DOCKER:-/usr/bin/docker}
strata=${STRATA:-$repo/target/debug/strata}
rootfs=${BUSYBOX_ROOTFS:-/var/tmp/anchors/busybox-rootfs.tar}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=($(ls "$here/cases"))
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
"$strata" --root "$root" import "$rootfs" busybox:local >/dev/null
failed=0
for name in "${cases[@]}"; do
  dir="$here/cases/$name"
  ctx="$work/ctx-$name"; mkdir -p "$ctx"
  (cd "$ctx" && bash "$dir/setup.sh")
  args=()
  if [ -f "$dir/build-args" ]; then while read -r a; do args+=(--build-arg "$a"); done <"$dir/build-args"; fi
  if [ -f "$dir/build-flags" ]; then while read -r a; do args+=($(eval echo "$a")); done <"$dir/build-flags"; fi
  export SOURCE_DATE_EPOCH=1700000000
  DOCKER_BUILDKIT=1 "$docker" build -q -f "$dir/Dockerfile" "${args[@]}" -t "strata-diff-$name" "$ctx" >/dev/null
  "$docker" save -o "$work/ref.tar" "strata-diff-$name"
  "$docker" rmi -f "strata-diff-$name" >/dev/null
  "$strata" --root "$root" build -q -f "$dir/Dockerfile" "${args[@]}" -t "strata-diff-$name" "$ctx" >/dev/null
  "$strata" --root "$root" save -o "$work/got.tar" "strata-diff-$name"
  if python3 "$here/compare.py" "$work/ref.tar" "$work/got.tar" >"$work/out" 2>&1; then
    echo "same   $name"
  elif [ -f "$dir/known-differences" ] && diff -q <(sort "$work/out") <(grep -v '^#' "$dir/known-differences" | sort) >/dev/null; then
    # exactly the differences the case documents (with why), nothing else
    echo "known  $name ($(grep -m1 '^#' "$dir/known-differences" | sed 's/^# *//'))"
  else
    echo "DIFFER $name"; cat "$work/out"; failed=1
  fi
done
exit $failed
