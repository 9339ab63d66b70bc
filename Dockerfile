# skein-operator's image, kubebuilder style.
#
# Nothing builds this file here: the build machine has no Docker engine, and
# Skein's images will be built by other means (as image tarballs imported into
# the project's own cluster, see ARCHITECTURE "Testing with real parts"). It
# is kept so that `docker build .` (or buildah, kaniko) works where an engine
# is available, and as the reference for what the image must contain.

# Build the manager binary.
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH

WORKDIR /workspace
# Download the modules first, in their own layer, so that a change to the
# source does not download them again.
COPY go.mod go.mod
COPY go.sum go.sum
RUN go mod download

# The source of the manager and the packages it imports.
COPY cmd/ cmd/
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/

# GOARCH is left to the build platform unless TARGETARCH is set, so that the
# binary matches the image's platform.
RUN CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath -o manager ./cmd/manager

# A minimal, non-root runtime image: https://github.com/GoogleContainerTools/distroless
FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532

ENTRYPOINT ["/manager"]
