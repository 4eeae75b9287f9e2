"""Settings per environment: `local` (development), `production`, `test`.

Chosen by DJANGO_SETTINGS_MODULE. manage.py defaults to `local`; the ASGI entry point
(what a server loads) defaults to `production`, so a deployment is safe unless told otherwise.
"""
