"""`make bench`: the real stack against the public recipe's design, side by side.

The bench drives our stack only through its public contract (the tables, `manage.py
listen_notify`, Daphne serving `config.asgi:application`, `/ws/violations/`, a login over
HTTP), never through our modules, so it measures whatever the pipeline's internals become.
The baseline (`bench.baseline`) and a raw `websockets` broadcast loop (`bench.raw_broadcast`)
run in the same run, on the same machine, with the same clients (`bench.clients`).
"""
