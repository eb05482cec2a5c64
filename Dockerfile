# syntax=docker/dockerfile:1
#
# Merge Guard: one static binary on distroless (CA certificates and tzdata
# included, no shell), running as the unprivileged user 65532.
#
#   docker build -t merge-guard .
#   docker run -d --name guard -p 8080:8080 -v guard-data:/data \
#     --env-file guard.env merge-guard
#
# State (the SQLite audit trail guard.db, its WAL, weekly exports) lives in the
# /data volume. See docs/install.md.

ARG GO_VERSION=1.26

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Never download a newer toolchain behind the user's back: go.mod's go line
# must be satisfied by this image (raise GO_VERSION if the build says so).
ENV GOTOOLCHAIN=local CGO_ENABLED=0 GOOS=linux
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/guard ./cmd/guard \
 && mkdir -p /out/data/exports

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/guard /usr/local/bin/guard
COPY --from=build --chown=65532:65532 /out/data /data
WORKDIR /data
ENV GUARD_ADDR=:8080 \
    GUARD_DB=/data/guard.db \
    GUARD_EXPORT_DIR=/data/exports
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/guard", "serve"]
