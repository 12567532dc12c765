# relatel-mcp for remote agents: streamable HTTP at /mcp, legacy SSE at /sse, /healthz, on port 8080.
#   docker build -t relatel-mcp .
#   docker run -p 8080:8080 -e RELATEL_TOKEN=... -e RELATEL_MCP_API_KEYS=... \
#     -e RELATEL_MCP_ALLOWED_HOSTS=mcp.example.com -v relatel-state:/home/relatel/state relatel-mcp
# scripts/check_dockerfile.py runs these install and run steps in a fresh virtual environment, as
# the image's user, with the state directory as the image makes it (and as root's, which it refuses).
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY relatel_mcp ./relatel_mcp
RUN pip install ".[postgres,otel]" && useradd --create-home --uid 10001 relatel
USER relatel
ENV RELATEL_MCP_STATE_DIR=/home/relatel/state
# Made by the user before VOLUME: Docker gives a new named volume this directory's owner and mode
# (without it the volume is root's, and the server refuses to start).
RUN mkdir -m 700 /home/relatel/state
VOLUME /home/relatel/state
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["relatel-mcp"]
CMD ["serve", "--transport", "http", "--host", "0.0.0.0", "--port", "8080"]
