# Builds a static authserver binary and runs it on a distroless base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/authserver ./cmd/authserver

FROM gcr.io/distroless/static-debian12:nonroot
WORKDIR /home/nonroot
COPY --from=build /out/authserver /usr/local/bin/authserver
COPY config.yaml /home/nonroot/config.yaml
ENV AUTH_SERVER_ADDR=0.0.0.0:8080
EXPOSE 8080
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/authserver"]
CMD ["serve"]
