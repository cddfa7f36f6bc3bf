# syntax=docker/dockerfile:1
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.Version=${VERSION}" -o /out/fluxgate ./cmd/fluxgate

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/fluxgate /usr/local/bin/fluxgate
ENV FLUXGATE_ADDR=:8080 FLUXGATE_DATA_DIR=/var/lib/fluxgate
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/fluxgate"]
CMD ["serve"]
