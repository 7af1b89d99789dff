# The service as production runs it: a plain `pip install .` with the pinned versions the
# Makefile uses, as a non-root user. Configure with STAX_* variables (README, CONTRACT.md).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --uid 10001 --home-dir /home/stax stax \
 && mkdir -p /var/lib/stax-import && chown stax:stax /var/lib/stax-import

WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY config ./config
COPY ingest ./ingest
COPY notify ./notify
COPY parsers ./parsers
COPY store ./store
COPY templates ./templates
RUN pip install -c constraints.txt . && rm -rf /src

USER stax
WORKDIR /home/stax
ENV STAX_DATA_DIR=/var/lib/stax-import \
    STAX_SMTP_HOST=0.0.0.0
VOLUME ["/var/lib/stax-import"]
EXPOSE 2525 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["stax-import"]
CMD ["serve"]
