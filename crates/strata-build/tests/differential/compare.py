#!/usr/bin/env python3
"""Compares two `docker save` archives of the same Dockerfile built by BuildKit and by strata.

Prints every difference in (1) the flattened file tree of the image (whiteouts applied):
path, type, mode, uid/gid, size, sha256 of the content, link target; (2) the files each
layer above the base adds, as the same tuples; (3) the image config's `config` object and the
history (created_by, empty_layer). mtimes are not compared (they are build times unless
SOURCE_DATE_EPOCH is set). Exit status 1 when anything differs.
Usage: compare.py reference.tar candidate.tar [base-layer-count]
"""
import hashlib, io, json, sys, tarfile


def load(path):
    outer = tarfile.open(path)
    manifest = json.load(outer.extractfile("manifest.json"))[0]
    config = json.load(outer.extractfile(manifest["Config"]))
    layers = []
    for name in manifest["Layers"]:
        entries = {}
        with tarfile.open(fileobj=io.BytesIO(outer.extractfile(name).read())) as t:
            for e in t.getmembers():
                kind = {tarfile.DIRTYPE: "d", tarfile.SYMTYPE: "l", tarfile.LNKTYPE: "h",
                        tarfile.CHRTYPE: "c", tarfile.BLKTYPE: "b", tarfile.FIFOTYPE: "p"}.get(e.type, "-")
                digest = ""
                if e.isfile():
                    digest = hashlib.sha256(t.extractfile(e).read()).hexdigest()[:16]
                path = e.name.rstrip("/").removeprefix("./")
                entries[path] = (kind, oct(e.mode & 0o7777), f"{e.uid}/{e.gid}", e.size if e.isfile() else 0, digest, e.linkname)
        layers.append(entries)
    return config, layers


def flatten(layers):
    tree = {}
    for layer in layers:
        for path, entry in sorted(layer.items()):
            parent, _, base = path.rpartition("/")
            if base == ".wh..wh..opq":
                for p in [p for p in tree if p.startswith(parent + "/")]:
                    del tree[p]
            elif base.startswith(".wh."):
                gone = (parent + "/" if parent else "") + base[4:]
                for p in [p for p in tree if p == gone or p.startswith(gone + "/")]:
                    del tree[p]
            else:
                tree[path] = entry
    return tree


def diff(label, a, b, out):
    for path in sorted(set(a) | set(b)):
        if a.get(path) != b.get(path):
            out.append(f"{label} {path}: buildkit={a.get(path)} strata={b.get(path)}")


def main():
    ref_config, ref_layers = load(sys.argv[1])
    got_config, got_layers = load(sys.argv[2])
    base = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    out = []
    diff("tree", flatten(ref_layers), flatten(got_layers), out)
    if len(ref_layers) != len(got_layers):
        out.append(f"layers: buildkit={len(ref_layers)} strata={len(got_layers)}")
    for i, (a, b) in enumerate(zip(ref_layers[base:], got_layers[base:])):
        diff(f"layer{i + base}", a, b, out)
    a, b = ref_config.get("config", {}), got_config.get("config", {})
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            out.append(f"config.{key}: buildkit={json.dumps(a.get(key))} strata={json.dumps(b.get(key))}")
    hist = lambda c: [(h.get("created_by"), bool(h.get("empty_layer"))) for h in c.get("history", [])]
    if hist(ref_config) != hist(got_config):
        out.append(f"history: buildkit={hist(ref_config)} strata={hist(got_config)}")
    for line in out:
        print("  " + line)
    sys.exit(1 if out else 0)


if __name__ == "__main__":
    main()
