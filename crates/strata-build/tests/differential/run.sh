#!/usr/bin/env bash
# Opt-in differential check: builds each case under cases/ with Docker + BuildKit and prints
# what strata-build's tests assert (src/build_tests.rs): the `config` object, history
# `created_by` lines and each new layer as `path type mode uid/gid size`.
# Needs the reference tools (`/work/shared/tools/anchors-up`: Docker 20.10 and `busybox:local`).
# Usage: run.sh [case...]   (default: every case)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
docker=${DOCKER:-/usr/bin/docker}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=($(ls "$here/cases"))
for name in "${cases[@]}"; do
  dir="$here/cases/$name"
  ctx=$(mktemp -d); out=$(mktemp -d)
  trap 'rm -rf "$ctx" "$out"' EXIT
  (cd "$ctx" && bash "$dir/setup.sh")
  echo "### $name"
  args=()
  # Optional: one NAME=value per line in build-args.
  if [ -f "$dir/build-args" ]; then while read -r a; do args+=(--build-arg "$a"); done <"$dir/build-args"; fi
  DOCKER_BUILDKIT=1 "$docker" build -q -f "$dir/Dockerfile" ${TARGET:+--target "$TARGET"} "${args[@]}" -t "strata-diff-$name" "$ctx" >/dev/null
  "$docker" save "strata-diff-$name" | tar -x -C "$out"
  python3 - "$out" <<'PY'
import json, sys, tarfile, os
out = sys.argv[1]
m = json.load(open(os.path.join(out, "manifest.json")))[0]
c = json.load(open(os.path.join(out, m["Config"])))
print("config", json.dumps(c["config"], separators=(",", ":")))
for h in c["history"][1:]:
    print("history", h.get("created_by"), "(empty)" if h.get("empty_layer") else "")
for layer in m["Layers"][1:]:
    print("layer")
    with tarfile.open(os.path.join(out, layer)) as t:
        for e in t.getmembers():
            kind = "d" if e.isdir() else "l" if e.issym() else "-"
            name = e.name + ("/" if e.isdir() else "")
            print(f"  {name} {kind} {e.mode & 0o7777:o} {e.uid}/{e.gid} {e.size}")
PY
  "$docker" rmi -f "strata-diff-$name" >/dev/null
  rm -rf "$ctx" "$out"; trap - EXIT
done
