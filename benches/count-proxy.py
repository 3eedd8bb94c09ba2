#!/usr/bin/env python3
"""A counting HTTP proxy for benchmarks: listens on 127.0.0.1:PORT, forwards every
connection to TARGET (host:port, or a unix socket path), and appends one line per request
("METHOD PATH") to LOG. Loopback only; stops when killed.

    python3 benches/count-proxy.py 127.0.0.1:5001 127.0.0.1:5000 requests.log
    python3 benches/count-proxy.py 127.0.0.1:2376 /var/run/docker.sock requests.log
"""
import re
import socket
import sys
import threading

listen, target, log = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
request_line = re.compile(rb"(GET|HEAD|POST|PUT|DELETE|PATCH) (\S+) HTTP/1\.[01]\r\n")


def connect():
    if target.startswith("/"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(target)
    else:
        h, p = target.rsplit(":", 1)
        s = socket.create_connection((h, int(p)))
    return s


def pump(src, dst, count):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if count:
                lines = [m.group(1) + b" " + m.group(2) for m in request_line.finditer(data)]
                if lines:
                    with lock, open(log, "ab") as f:
                        f.write(b"\n".join(lines) + b"\n")
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


h, p = listen.rsplit(":", 1)
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind((h, int(p)))
server.listen(128)
while True:
    client, _ = server.accept()
    upstream = connect()
    threading.Thread(target=pump, args=(client, upstream, True), daemon=True).start()
    threading.Thread(target=pump, args=(upstream, client, False), daemon=True).start()
