# The demo origin (tools/demo-origin.py) in a container of its own, for the
# Compose cluster where no python image can be pulled (docker/compose.host.yaml).
#   docker build -f docker/origin.Dockerfile -t tern-origin .
ARG DEBIAN=debian:12-slim
FROM ${DEBIAN}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3-minimal python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 origin
COPY tools/demo-origin.py /opt/demo-origin.py
USER origin
EXPOSE 8081
ENTRYPOINT ["python3", "/opt/demo-origin.py"]
CMD ["--port", "8081", "--bind", "0.0.0.0"]
