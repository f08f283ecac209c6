# One image for both Procfile processes (web: API, worker: Celery).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml constraints.txt README.md Procfile ./
COPY genblaze_s3 ./genblaze_s3
COPY workers ./workers
RUN pip install -c constraints.txt '.[queue]' \
 && useradd --system --uid 10001 genblaze
USER genblaze
EXPOSE 8000
CMD ["python", "-m", "genblaze_s3.cli", "api", "--host", "0.0.0.0", "--port", "8000"]
