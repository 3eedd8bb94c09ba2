#!/usr/bin/env python3
"""Pushes a synthetic fleet to a local registry over its HTTP API: SERVICES repositories,
each with TAGS releases (1.0.0, 1.1.0, ...), every release its own image whose config
carries the org.opencontainers.image.revision label of REVS[i]. Prints, per repository and
tag, the manifest digest, as JSON: {"svc000": {"1.0.0": "sha256:..."}}.

    python3 benches/registry-push.py 127.0.0.1:5000 200 4 REV1 REV2 REV3 REV4
"""
import hashlib
import json
import sys
import urllib.request

host, services, tags = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
revs = sys.argv[4:]


def put(url, data, ctype):
    req = urllib.request.Request(url, data=data, method="PUT", headers={"Content-Type": ctype})
    with urllib.request.urlopen(req) as r:
        return r.headers


def blob(repo, data):
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    req = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", data=b"", method="POST")
    with urllib.request.urlopen(req) as r:
        location = r.headers["Location"]
    if location.startswith("/"):
        location = f"http://{host}{location}"
    sep = "&" if "?" in location else "?"
    put(f"{location}{sep}digest={digest}", data, "application/octet-stream")
    return digest, len(data)


out = {}
for s in range(services):
    repo = f"svc{s:03d}"
    out[repo] = {}
    layer = f"layer of {repo}".encode()
    layer_digest, layer_size = blob(repo, layer)
    for t in range(tags):
        tag = f"1.{t}.0"
        config = json.dumps({
            "architecture": "amd64", "os": "linux",
            "config": {"Labels": {"org.opencontainers.image.revision": revs[t % len(revs)]}},
            "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        }, sort_keys=True).encode()
        config_digest, config_size = blob(repo, config)
        manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
        }, sort_keys=True).encode()
        put(f"http://{host}/v2/{repo}/manifests/{tag}", manifest, "application/vnd.oci.image.manifest.v1+json")
        out[repo][tag] = "sha256:" + hashlib.sha256(manifest).hexdigest()
json.dump(out, sys.stdout)
