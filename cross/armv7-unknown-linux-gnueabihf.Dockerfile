# Build image for `cross build --target armv7-unknown-linux-gnueabihf` (32-bit Raspberry Pi OS).
# cross passes the matching cross-rs base image as CROSS_BASE_IMAGE.
#
# ONNX Runtime publishes no armv7 (32-bit ARM) wheel or release, so this image installs none:
# the binary builds, but a 32-bit board needs a libonnxruntime.so.1.31.1 built from source
# (docs/ship.md, "32-bit Raspberry Pi OS"). Prefer the 64-bit OS on every Pi that supports it.
ARG CROSS_BASE_IMAGE
FROM $CROSS_BASE_IMAGE

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libclang-dev clang \
 && rm -rf /var/lib/apt/lists/*

ENV BINDGEN_EXTRA_CLANG_ARGS_armv7_unknown_linux_gnueabihf="--sysroot=/usr/arm-linux-gnueabihf"
