"""A tiny chat server for trying echo-bot: every message is broadcast to every other
client of the same path. Loopback only.

    python examples/echo-bot/chat_server.py            # ws://127.0.0.1:8765/chat
    python -m websockets ws://127.0.0.1:8765/chat      # a human client: type lines

`--say N` makes the server itself post N numbered messages once a client connects
(a demo without a second terminal)."""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

ROOMS: defaultdict[str, set[ServerConnection]] = defaultdict(set)


async def chat(ws: ServerConnection, say: int) -> None:
    path = ws.request.path if ws.request is not None else "/"
    room = ROOMS[path]
    room.add(ws)
    print(f"+ client on {path} ({len(room)} in the room)", flush=True)
    try:
        if say:
            for i in range(1, say + 1):
                await ws.send(f"server message {i}")
        async for message in ws:
            print(f"{path}: {message!r}", flush=True)
            broadcast([c for c in room if c is not ws], message)
    except ConnectionClosed:
        pass
    finally:
        room.discard(ws)
        print(f"- client left {path} ({len(room)} in the room)", flush=True)


async def main(port: int, say: int) -> None:
    async with serve(lambda ws: chat(ws, say), "127.0.0.1", port):
        print(f"chat server on ws://127.0.0.1:{port}/chat (Ctrl-C to stop)", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--say", type=int, default=0, metavar="N", help="post N messages to each client that connects")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.port, args.say))
    except KeyboardInterrupt:
        pass
