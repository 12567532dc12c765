# relatel-mcp in a container. By default it serves MCP over stdio: docker run -i -e RELATEL_TOKEN ...
FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY relatel_mcp ./relatel_mcp
RUN pip install . && useradd --create-home --uid 10001 relatel
USER relatel
ENTRYPOINT ["relatel-mcp"]
