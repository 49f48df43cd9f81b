# anigraph runtime image: the package and its wheels in a virtual environment, run as a non-root
# user, with the data folder as a volume. The install step is the one `make run` uses
# (scripts/install-venv.sh), so the image holds exactly what a `make run` installs.
#
#   docker build -t anigraph .
#   docker run -p 127.0.0.1:8080:8080 -v anigraph-data:/var/lib/anigraph anigraph
#
# The first start prints the default API key (docker logs); it is also kept in the volume,
# /var/lib/anigraph/default-key.json. For the scale-out stack see compose.yaml and
# docs/deployment.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts/install-venv.sh scripts/
COPY src ./src
RUN sh scripts/install-venv.sh /opt/anigraph .

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 anigraph \
    && useradd --system --uid 10001 --gid anigraph --home-dir /var/lib/anigraph \
       --shell /usr/sbin/nologin anigraph \
    && install -d -o anigraph -g anigraph -m 0700 /var/lib/anigraph
COPY --from=build /opt/anigraph /opt/anigraph
ENV PATH=/opt/anigraph/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ANIGRAPH_DATA_DIR=/var/lib/anigraph \
    ANIGRAPH_HOST=0.0.0.0 \
    ANIGRAPH_PORT=8080
USER anigraph
WORKDIR /var/lib/anigraph
VOLUME ["/var/lib/anigraph"]
EXPOSE 8080
# /healthz answers 200 once the database does; workers (no HTTP) override this in compose.yaml.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('ANIGRAPH_PORT', '8080'), timeout=4)"]
ENTRYPOINT ["anigraph"]
CMD ["serve"]
