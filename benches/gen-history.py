#!/usr/bin/env python3
"""Writes a git fast-import stream for a synthetic repository: a mainline of N commits with
merged feature branches, release branches carrying hotfixes, and a few hundred tags.
Deterministic (pinned names and dates), so every run builds the same SHAs.

    python3 benches/gen-history.py 200000 | git -C REPO fast-import --quiet
    python3 benches/gen-history.py 50000 100 | ...   # changes spread over svc0/ .. svc99/
"""
import sys

TOTAL = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
SERVICES = int(sys.argv[2]) if len(sys.argv) > 2 else 10   # mainline commit n changes svc{n % SERVICES}/
FEATURE_EVERY = 40      # a merged feature branch of 3 commits every 40 mainline commits
RELEASE_EVERY = 700     # a release tag, and a release branch with 2 hotfixes, every 700
EPOCH = 1_600_000_000

out = sys.stdout.buffer
mark = 0
clock = EPOCH
written = 0


def emit(s):
    out.write(s.encode() if isinstance(s, str) else s)


def data(b):
    emit(f"data {len(b)}\n")
    emit(b)
    emit(b"\n")


def commit(ref, msg, path, content, parents):
    global mark, clock, written
    mark += 1
    clock += 60
    written += 1
    emit(f"commit {ref}\nmark :{mark}\n")
    emit(f"author Bench <bench@example.com> {clock} +0000\n")
    emit(f"committer Bench <bench@example.com> {clock} +0000\n")
    data(msg.encode())
    if parents:
        emit(f"from :{parents[0]}\n")
        for p in parents[1:]:
            emit(f"merge :{p}\n")
    emit(f"M 644 inline {path}\n")
    data(content.encode())
    return mark


def main():
    main_tip = None
    n = 0
    minor = 0
    while written < TOTAL:
        n += 1
        svc = n % SERVICES
        main_tip = commit("refs/heads/main", f"SVC-{n} change {n} in svc{svc}", f"svc{svc}/f{n % 97}.txt",
                          f"line {n}\n", [main_tip] if main_tip else [])
        if n % FEATURE_EVERY == 0:
            tip = main_tip
            for k in range(3):
                tip = commit(f"refs/heads/feature/{n}", f"FEAT-{n}-{k} feature work", f"svc{svc}/feat{n}.txt",
                             f"feature {n} {k}\n", [tip])
            main_tip = commit("refs/heads/main", f"Merge feature/{n}", f"svc{svc}/merged.txt", f"{n}\n",
                              [main_tip, tip])
            emit(f"reset refs/heads/feature/{n}\nfrom 0000000000000000000000000000000000000000\n\n")
        if n % RELEASE_EVERY == 0:
            minor += 1
            version = f"1.{minor}.0"
            emit(f"reset refs/tags/v{version}\nfrom :{main_tip}\n\n")
            tip = main_tip
            for k in range(2):
                tip = commit(f"refs/heads/release/1.{minor}", f"HOT-{minor}-{k} hotfix", f"svc{svc}/hotfix.txt",
                             f"hotfix {minor} {k}\n", [tip])
            emit(f"reset refs/tags/v1.{minor}.1\nfrom :{tip}\n\n")
    emit("done\n")


main()
