"""Local services for machines with nothing installed: tests and `make run` use them.

When DATABASE_URL or REDIS_URL is set, those servers are used and nothing here runs;
we never probe or borrow a server on the default ports.
"""
