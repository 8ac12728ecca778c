# Multi-stage build: a static statekeeper binary on a distroless non-root base.
#   docker build --build-arg VERSION=$(git describe --tags --always) -t statekeeper .
# It works with BuildKit and with the legacy builder alike (no cache mounts, no
# automatic platform arguments required); with buildx, TARGETOS/TARGETARCH pick
# the binary's platform, otherwise it is built for the builder's own.

FROM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH
# VERSION is stamped into the binary (internal/cli.version).
ARG VERSION=dev
WORKDIR /src

# Dependencies first, so that source edits reuse the module download layer.
COPY go.mod go.sum ./
RUN go mod download

COPY cmd/ cmd/
COPY internal/ internal/
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath \
      -ldflags "-s -w -X github.com/statekeeper/statekeeper/internal/cli.version=${VERSION}" \
      -o /out/statekeeper ./cmd/statekeeper

# distroless/static: no shell, no package manager, CA certificates and tzdata only.
FROM gcr.io/distroless/static:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title="statekeeper" \
      org.opencontainers.image.description="Kubernetes admission webhook for component deployment types" \
      org.opencontainers.image.source="https://github.com/statekeeper/statekeeper" \
      org.opencontainers.image.version="${VERSION}"
COPY --from=builder /out/statekeeper /statekeeper
USER 65532:65532
# 9443 webhook (HTTPS), 8080 metrics, 8081 health probes.
EXPOSE 9443 8080 8081
ENTRYPOINT ["/statekeeper"]
CMD ["serve"]
