#!/usr/bin/env python3
"""A counting HTTP proxy for benchmarks: listens on 127.0.0.1:PORT, forwards every
connection to TARGET (host:port, or a unix socket path), and appends one line per request
("METHOD PATH") to LOG. Also keeps the most requests it saw in flight at once (a request
is in flight from its request line until the first byte of its answer) in LOG.inflight;
removing that file starts the count afresh.
Several LISTEN TARGET LOG triples serve several targets from one process. Loopback only;
stops when killed.

    python3 benches/count-proxy.py 127.0.0.1:5001 127.0.0.1:5000 requests.log
    python3 benches/count-proxy.py 127.0.0.1:2376 /var/run/docker.sock requests.log
    python3 benches/count-proxy.py 127.0.0.1:5001 127.0.0.1:5000 a.log 127.0.0.1:5003 127.0.0.1:5002 b.log
"""
import os
import re
import socket
import sys
import threading

lock = threading.Lock()
request_line = re.compile(rb"(GET|HEAD|POST|PUT|DELETE|PATCH) (\S+) HTTP/1\.[01]\r\n")


class Counter:
    def __init__(self, log):
        self.log, self.now, self.most = log, 0, 0

    def started(self, lines):
        with lock:
            if not os.path.exists(self.log + ".inflight"):
                self.most = 0  # removed by the caller: a new run starts counting afresh
            with open(self.log, "ab") as f:
                f.write(b"\n".join(lines) + b"\n")
            self.now += len(lines)
            if self.now > self.most:
                self.most = self.now
                with open(self.log + ".inflight", "w") as f:
                    f.write(f"{self.most}\n")

    def answered(self, n):
        with lock:
            self.now -= n


def connect(target):
    if target.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(target)
    else:
        h, p = target.rsplit(":", 1)
        s = socket.create_connection((h, int(p)))
    return s


def close(*socks):
    for s in socks:
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def requests(client, upstream, counter, waiting):
    """Client to upstream: counts request lines; `waiting` holds how many await an answer."""
    try:
        while True:
            data = client.recv(65536)
            if not data:
                break
            lines = [m.group(1) + b" " + m.group(2) for m in request_line.finditer(data)]
            if lines:
                counter.started(lines)
                with lock:
                    waiting[0] += len(lines)
            upstream.sendall(data)
    except OSError:
        pass
    finally:
        close(client, upstream)


def answers(upstream, client, counter, waiting):
    """Upstream to client: the first bytes after a request answer it."""
    try:
        while True:
            data = upstream.recv(65536)
            if not data:
                break
            with lock:
                n, waiting[0] = waiting[0], 0
            if n:
                counter.answered(n)
            client.sendall(data)
    except OSError:
        pass
    finally:
        with lock:
            n, waiting[0] = waiting[0], 0
        if n:
            counter.answered(n)
        close(client, upstream)


def serve(listen, target, log):
    counter = Counter(log)
    h, p = listen.rsplit(":", 1)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((h, int(p)))
    server.listen(128)
    while True:
        client, _ = server.accept()
        upstream = connect(target)
        waiting = [0]
        threading.Thread(target=requests, args=(client, upstream, counter, waiting), daemon=True).start()
        threading.Thread(target=answers, args=(upstream, client, counter, waiting), daemon=True).start()


args = sys.argv[1:]
if not args or len(args) % 3:
    sys.exit(__doc__)
triples = [args[i:i + 3] for i in range(0, len(args), 3)]
for t in triples[1:]:
    threading.Thread(target=serve, args=t, daemon=True).start()
serve(*triples[0])
