# The Firebreak controller image: a static-ish release build on a distroless, non-root base.
# (Not built on the project's machines, which have no container engine.)
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin firebreak

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/firebreak /usr/local/bin/firebreak
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/firebreak"]
CMD ["controller", "--metrics-address=0.0.0.0:8080"]
