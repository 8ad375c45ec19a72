# The reference service; the role (api, outbox-worker, queue-worker, migrate) is the command.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY reference_impl ./reference_impl
COPY harness ./harness
RUN pip install --no-cache-dir .
ENTRYPOINT ["python", "-m", "reference_impl"]
