"""The baseline: the public recipe's design, as a Django project of its own.

A trigger on its own tables NOTIFYs `row_to_json(NEW)`; a listener LISTENs and
`group_send`s every payload to one group; every WebSocket consumer joins that group and
does `json.dumps` and a send per event (channels-redis's core `RedisChannelLayer`, as the
recipe configures). Served by its own Daphne. Kept as plain as the recipe on purpose:
it is what we measure ourselves against, not something to improve.
"""
