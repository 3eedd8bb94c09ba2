#!/usr/bin/env python3
"""Writes what a large fleet looks like to prodiff, for benches/scale.sh. Deterministic.

    python3 benches/gen-fleet.py pods N COMMITS > pods.json
        `kubectl get pods -o json` with N pods: deployments of 10 replicas (svc00000,
        svc00001, ...), each pod one app container and one sidecar, as kubectl 1.32
        prints them (managed fields left out). Every tenth deployment is mid-rollout:
        three of its replicas still run the previous commit.
    python3 benches/gen-fleet.py inventory SERVICES ENVIRONMENTS COMMITS > inventory.json
        an inventory of SERVICES x ENVIRONMENTS workloads; environment e runs an older
        commit of each service the later it comes (dev newest, production oldest).

COMMITS is a file of commit ids, newest first (`git rev-list --first-parent main`); service
s runs one of them, spread evenly over the file whatever the fleet's size, so every size
sees the same distribution of distances behind the mainline.
"""
import hashlib
import json
import sys

REGISTRY = "registry.bench.example"
ENVIRONMENTS = ["dev", "qa", "staging", "canary", "production", "perf", "dr", "edge"]


def commits(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def running(revs, s, services, lag=0):
    """The commit service s of `services` runs, `lag` steps older."""
    span = len(revs) - 1
    i = (s * 7919) % services * span // max(services - 1, 1)
    return revs[min(i + lag, span)]


def fake_digest(text):
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def container_status(name, image, rev, started):
    repo = image.split(":")[0]
    return {
        "containerID": "containerd://" + hashlib.sha256(f"{name}{started}{rev}".encode()).hexdigest(),
        "image": image,
        "imageID": f"{repo}@{fake_digest(image)}",
        "lastState": {},
        "name": name,
        "ready": True,
        "restartCount": 0,
        "started": True,
        "state": {"running": {"startedAt": started}},
    }


def pod(svc, replica, rev):
    image = f"{REGISTRY}/shop/{svc}:sha-{rev[:12]}"
    sidecar = "docker.io/envoyproxy/envoy:v1.31.0"
    started = f"2026-11-{1 + replica % 28:02d}T09:{replica % 60:02d}:00Z"
    name = f"{svc}-{rev[:6]}-{replica:05d}"
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "creationTimestamp": started,
            "labels": {"app.kubernetes.io/name": svc, "pod-template-hash": rev[:6]},
            "name": name,
            "namespace": "shop",
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{svc}-{rev[:6]}",
                                 "uid": rev[:8]}],
            "resourceVersion": str(48213 + replica),
            "uid": f"{name}-uid",
        },
        "spec": {
            "containers": [
                {"image": image, "name": "app", "ports": [{"containerPort": 8080}]},
                {"image": sidecar, "name": "envoy"},
            ],
            "dnsPolicy": "ClusterFirst",
            "nodeName": f"node-{replica % 50}",
            "restartPolicy": "Always",
            "schedulerName": "default-scheduler",
            "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30,
        },
        "status": {
            "conditions": [{"status": "True", "type": "Ready"}],
            "containerStatuses": [container_status("app", image, rev, started),
                                  container_status("envoy", sidecar, "v1.31.0", started)],
            "hostIP": f"10.0.{replica % 50}.1",
            "phase": "Running",
            "podIP": f"10.1.{replica // 250 % 250}.{replica % 250}",
            "qosClass": "BestEffort",
            "startTime": started,
        },
    }


def pods(n, revs):
    services = max(n // 10, 1)
    items = []
    for p in range(n):
        s, replica = p % services, p // services
        rev = running(revs, s, services)
        if s % 10 == 0 and replica < 3:
            rev = running(revs, s, services, lag=5)
        items.append(pod(f"svc{s:05d}", p, rev))
    return {"apiVersion": "v1", "items": items, "kind": "List", "metadata": {"resourceVersion": ""}}


def inventory(services, environments, revs):
    rows = []
    for s in range(services):
        for e in range(environments):
            rev = running(revs, s, services, lag=e * 3)
            rows.append({"environment": ENVIRONMENTS[e], "service": f"svc{s:05d}",
                         "image": f"{REGISTRY}/shop/svc{s:05d}:sha-{rev[:12]}"})
    return {"workloads": rows}


def main():
    mode = sys.argv[1]
    if mode == "pods":
        out = pods(int(sys.argv[2]), commits(sys.argv[3]))
    elif mode == "inventory":
        out = inventory(int(sys.argv[2]), int(sys.argv[3]), commits(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {mode!r}: pods or inventory")
    json.dump(out, sys.stdout, separators=(",", ":"))


main()
