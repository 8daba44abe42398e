#!/usr/bin/env python3
"""Cold start and idle memory of one server start, for scripts/bench-peers.sh.

Usage: start_ready.py URL CACERT IDLE_WAIT -- COMMAND...

Starts COMMAND (the server; a `taskset -c N` prefix execs into it, so the process id is the server's),
polls URL (HTTPS GET, trusting CACERT) every 2 ms from the moment of the fork until it answers 200,
then waits until IDLE_WAIT seconds after the fork and reads VmRSS and RssAnon from /proc/PID/status.
Prints "ready_ms vmrss_kib rssanon_kib", then stops the server (SIGTERM, SIGKILL after 10 s).
Fails when the server exits or is not ready within 60 s.
"""
import http.client
import signal
import ssl
import subprocess
import sys
import time
import urllib.parse


def main():
    url, cacert, idle = sys.argv[1], sys.argv[2], float(sys.argv[3])
    if sys.argv[4] != "--":
        sys.exit("usage: start_ready.py URL CACERT IDLE_WAIT -- COMMAND...")
    command = sys.argv[5:]
    parts = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=cacert)
    start = time.monotonic()
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = None
        while time.monotonic() - start < 60:
            if server.poll() is not None:
                sys.exit(f"start_ready.py: server exited with {server.returncode}: {' '.join(command)}")
            try:
                conn = http.client.HTTPSConnection(parts.hostname, parts.port, context=context, timeout=2)
                conn.request("GET", parts.path or "/")
                status = conn.getresponse().status
                conn.close()
                if status == 200:
                    ready = time.monotonic() - start
                    break
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.002)
        if ready is None:
            sys.exit(f"start_ready.py: not ready within 60 s: {' '.join(command)}")
        time.sleep(max(0.0, start + idle - time.monotonic()))
        fields = {}
        with open(f"/proc/{server.pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.split()[0] if value.split() else ""
        print(f"{ready * 1000:.0f} {fields.get('VmRSS', '-')} {fields.get('RssAnon', '-')}")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


if __name__ == "__main__":
    main()
