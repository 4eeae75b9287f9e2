"""`python -m bench.baseline.listener DSN`: the recipe's listener.

LISTEN, and `group_send` each payload to the one group as it arrives. Written with asyncio
and psycopg 3 (the recipe's sync loop with `async_to_sync` per message would only be
slower): the design under test is the fan-out, not the listener's event loop.
"""

import argparse
import asyncio
import json
import os

import django
import psycopg
from psycopg import sql

from bench.baseline.consumers import GROUP
from bench.baseline.schema import BASELINE_CHANNEL


async def listen(dsn: str) -> None:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(BASELINE_CHANNEL)))
        print("listening", flush=True)
        async for notification in conn.notifies():
            await layer.group_send(
                GROUP, {"type": "violation.message", "message": json.loads(notification.payload)}
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.baseline.settings")
    django.setup()
    asyncio.run(listen(args.dsn))


if __name__ == "__main__":
    main()
