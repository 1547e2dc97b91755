#!/usr/bin/env python3
"""Makes a one-line change to a configuration file and reports how long the gateway takes to serve it.

    edit_and_wait.py PORT HOST FILE OLD NEW [TIMEOUT_S [DELAY_S]]

Replaces the line OLD with NEW in FILE (the whole line, once), then asks the gateway on
127.0.0.1:PORT for `/` with `Host: HOST` every 5 ms over one keep-alive connection until it
answers 200, and prints the milliseconds from the edit to that answer. One process and one
connection, so that the probe itself costs the CPUs it shares with the benchmark next to
nothing (a new curl process per probe costs milliseconds of CPU each).

With DELAY_S, the edit is made DELAY_S seconds after the probe starts: a probe started before
a load generator makes its change during the run without starting an interpreter then (about
0.1 s of CPU, taken from the load generator's CPU while the change is measured).
"""
import http.client
import sys
import time


def main():
    port, host, path, old, new = sys.argv[1:6]
    timeout = float(sys.argv[6]) if len(sys.argv) > 6 else 60.0
    delay = float(sys.argv[7]) if len(sys.argv) > 7 else 0.0
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if old not in lines:
        sys.exit(f"{path}: no line {old!r}")
    lines[lines.index(old)] = new
    text = "\n".join(lines)
    conn = None
    if delay > 0:
        time.sleep(delay)
    start = time.monotonic()
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    while True:
        elapsed = time.monotonic() - start
        if elapsed > timeout:
            sys.exit(f"{host} not served {timeout} s after the change")
        try:
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", int(port), timeout=2)
            conn.request("GET", "/", headers={"Host": host})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                print(round((time.monotonic() - start) * 1000))
                return
        except (OSError, http.client.HTTPException):
            if conn is not None:
                conn.close()
            conn = None
        time.sleep(0.005)


if __name__ == "__main__":
    main()
