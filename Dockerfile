# The djl-sagemaker-operator image: the operator and its runtime dependencies only
# (no torch/transformers), as a non-root user, on a read-only root filesystem.
#
# Both stages use the same base so the virtualenv copied between them keeps working.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY operator/ operator/
COPY model_template/ model_template/
COPY docker/install.sh docker/install.sh
# The only install step; tests/unit/test_dockerfile.py runs this same script in a clean virtualenv.
RUN sh docker/install.sh /src /opt/venv

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="djl-sagemaker-operator" \
      org.opencontainers.image.description="Kubernetes operator for DJL Serving endpoints on Amazon SageMaker" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/venv /opt/venv
# Bytecode was compiled at install time and nothing may be written next to it (read-only
# root filesystem); HOME points at the one writable mount (/tmp, an emptyDir in the Deployment).
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
# A numeric user (no passwd entry needed) so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["djl-operator", "run", "--liveness", "http://0.0.0.0:8080/healthz"]
