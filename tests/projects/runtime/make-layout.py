#!/usr/bin/env python3
"""make-layout.py ROOTFS OUTDIR [ARCH [PATH [ENTRYPOINT]]]: write an OCI image
layout at OUTDIR whose one layer is the directory ROOTFS (a base image for
the runtime layer tests), tagged "latest", for linux/ARCH (default amd64),
with Env PATH=/bin (or PATH=PATH) and, given a JSON list, that Entrypoint.
Written with the standard library alone, independently of hypertest's own
image code."""
import gzip, hashlib, io, json, os, sys, tarfile

def blob(out, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(out, "blobs", "sha256")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, digest), "wb") as f:
        f.write(data)
    return "sha256:" + digest

def main():
    rootfs, out = sys.argv[1], sys.argv[2]
    arch = sys.argv[3] if len(sys.argv) > 3 else "amd64"
    env_path = sys.argv[4] if len(sys.argv) > 4 else "/bin"
    entrypoint = json.loads(sys.argv[5]) if len(sys.argv) > 5 else None
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        entries = []
        for top, dirs, files in os.walk(rootfs):
            for name in dirs + files:
                entries.append(os.path.join(top, name))
        for path in sorted(entries):
            info = tar.gettarinfo(path, os.path.relpath(path, rootfs))
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                with open(path, "rb") as f:
                    tar.addfile(info, f)
            else:
                tar.addfile(info)
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    gz = gzip.compress(raw.getvalue(), mtime=0)
    layer = blob(out, gz)
    image_config = {"Env": ["PATH=" + env_path]}
    if entrypoint:
        image_config["Entrypoint"] = entrypoint
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "make-layout.py"}]}).encode()
    cdigest = blob(out, config)
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cdigest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": len(gz)}]}).encode()
    mdigest = blob(out, manifest)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest,
            "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)

main()
