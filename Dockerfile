# The reference service; the role (api, outbox-worker, queue-worker, migrate) is the command.
# BASE_IMAGE: any Python 3.11 image whose `python` and `pip` are on PATH; where no image registry is
# reachable, scripts/docker_setup.sh builds one from Debian (harness-python:3.11) and builds this FROM it.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}
WORKDIR /app
COPY pyproject.toml README.md ./
COPY reference_impl ./reference_impl
COPY harness ./harness
RUN pip install --no-cache-dir .
ENTRYPOINT ["python", "-m", "reference_impl"]
