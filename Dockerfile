# SmartHealth API image. Needs a PostgreSQL server with pgvector (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    APP_ENV=production SMARTHEALTH_DATA_DIR=/var/lib/smarthealth

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[server]" \
 && useradd --system --create-home --home-dir /var/lib/smarthealth smarthealth

USER smarthealth
EXPOSE 8088
HEALTHCHECK --interval=30s --timeout=5s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8088/health').status != 200)"

# Migrate, then serve with gunicorn + uvicorn workers (state lives in PostgreSQL, so any worker
# can serve any turn of any chat).
CMD ["sh", "-c", "smarthealth db upgrade && exec gunicorn 'smarthealth.app:create_app()' -k uvicorn_worker.UvicornWorker -w ${WEB_CONCURRENCY:-2} -b 0.0.0.0:8088 --timeout 120 --graceful-timeout 30"]
