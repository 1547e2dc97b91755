#!/usr/bin/env python3
"""Opens N keep-alive connections to HOST:PORT, has one request answered on each, then holds
them all idle until standard input closes. Prints "ready N" once every connection is idle.

    idle_clients.py HOST PORT N [h1|h2c]

Used by scripts/bench-idle.sh to measure what an idle connection costs a proxy. h2c speaks
HTTP/2 with prior knowledge: the preface, an empty SETTINGS, one GET, then the server's
SETTINGS acknowledged.
"""
import asyncio
import sys

REQUEST = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n"
# HPACK: indexed :method GET, :scheme http, :path /, then :authority (indexed name 1) as a
# literal without indexing.
AUTHORITY = b"localhost"
H2_BLOCK = bytes([0x82, 0x86, 0x84, 0x01, len(AUTHORITY)]) + AUTHORITY


def frame(kind, flags, stream, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


async def h1(reader, writer):
    writer.write(REQUEST)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    await reader.readexactly(length)
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:40])


async def h2c(reader, writer):
    writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(1, 0x5, 1, H2_BLOCK))
    await writer.drain()
    acked = False
    while True:
        head = await reader.readexactly(9)
        length = int.from_bytes(head[:3], "big")
        kind, flags = head[3], head[4]
        stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        await reader.readexactly(length)
        if kind == 4 and not flags & 1 and not acked:
            writer.write(frame(4, 1, 0))
            acked = True
        if stream == 1 and kind in (0, 1) and flags & 1:
            await writer.drain()
            return


async def main():
    host, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    speak = h2c if len(sys.argv) > 4 and sys.argv[4] == "h2c" else h1
    held = []
    # A few at a time, as clients arrive; all are held open at the end.
    for start in range(0, count, 100):
        batch = [asyncio.open_connection(host, port) for _ in range(start, min(count, start + 100))]
        for reader, writer in await asyncio.gather(*batch):
            held.append((reader, writer))
        await asyncio.gather(*(speak(r, w) for r, w in held[start:]))
    print(f"ready {len(held)}", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    for _, writer in held:
        writer.close()


asyncio.run(main())
