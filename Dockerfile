# The image docker-compose.yml runs as `migrate`, `web` and `listener`.
# Python 3.11: the version the test suite runs on and constraints.txt was pinned with.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

RUN useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin app

WORKDIR /app

# Dependencies first, in a layer of their own: editing the code does not reinstall them.
# Only the runtime dependencies (no dev or local extras), read from pyproject.toml and
# pinned by constraints.txt. The project itself is not pip-installed: it runs from /app
# (manage.py, the web server's current directory), and a second copy in site-packages
# would only be a place for BASE_DIR to point at by mistake.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt -c constraints.txt \
    && rm /tmp/requirements.txt

COPY . .

# Hashed, compressed static files for whitenoise. Production settings insist on a secret
# key, hosts and a database URL; these placeholders exist for this one command only (they
# are not ENV, so the image does not carry them) and no database is contacted.
RUN DJANGO_SECRET_KEY=collectstatic-only \
    DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=postgres://collectstatic@localhost/collectstatic \
    python manage.py collectstatic --noinput -v0

USER app

EXPOSE 8000
# The web server WEB_SERVER names (Daphne by default), exec'd: it keeps this pid.
CMD ["python", "-m", "config.web_server", "--host", "0.0.0.0", "--port", "8000"]
