"""`python -m bench.raw_broadcast DSN PORT`: the floor for "cost per delivered frame".

One process: LISTEN on the raw table's channel and hand each payload, as it came, to
`websockets.broadcast()` for every connected socket. No channel layer, no ASGI, no JSON
round trip: what one frame to one socket costs in Python at the least.
"""

import argparse
import asyncio

import psycopg
from psycopg import sql
from websockets.asyncio.server import ServerConnection, broadcast, serve

from bench.baseline.schema import RAW_CHANNEL


async def run(dsn: str, port: int) -> None:
    sockets: set[ServerConnection] = set()

    async def handler(socket: ServerConnection) -> None:
        sockets.add(socket)
        try:
            await socket.wait_closed()
        finally:
            sockets.discard(socket)

    async with (
        serve(handler, "127.0.0.1", port, compression=None),
        await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn,
    ):
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(RAW_CHANNEL)))
        print("listening", flush=True)
        async for notification in conn.notifies():
            broadcast(sockets, notification.payload)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn")
    parser.add_argument("port", type=int)
    args = parser.parse_args()
    asyncio.run(run(args.dsn, args.port))


if __name__ == "__main__":
    main()
