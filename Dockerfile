# The bot: slim, no torch. (The `gpu` target for the worker and model server comes with them.)
FROM python:3.11-slim AS bot
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ftbot ftbot
COPY bot bot
COPY storage storage
COPY trainer trainer
COPY serving serving
RUN pip install --no-cache-dir .
ENV FT_DATA_DIR=/data
VOLUME /data
CMD ["ft", "status"]
