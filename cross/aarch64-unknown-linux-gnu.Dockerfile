# Build image for `cross build --target aarch64-unknown-linux-gnu` (Cross.toml). cross passes the
# matching cross-rs base image (Ubuntu, with the aarch64 gcc and qemu) as CROSS_BASE_IMAGE.
# Its glibc is older than Debian 12's, so binaries from here also run on older board images.
ARG CROSS_BASE_IMAGE
FROM $CROSS_BASE_IMAGE

# libclang + headers for bindgen (v4l), python3 + pip to fetch the ONNX Runtime wheel.
# nasm is only for openh264's x86 assembly: the aarch64 build uses its own .S files via gcc.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libclang-dev clang python3 python3-pip ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && python3 -m pip install --no-cache-dir --upgrade 'pip>=23'

# bindgen must parse the target's headers, not the build host's.
ENV BINDGEN_EXTRA_CLANG_ARGS_aarch64_unknown_linux_gnu="--sysroot=/usr/aarch64-linux-gnu"

# The target's ONNX Runtime, checksum-verified by the same script the project uses, so that
# `cross test` and `cross run` (qemu inside the image) can load it.
COPY scripts/fetch-onnxruntime.sh /usr/local/bin/fetch-onnxruntime.sh
RUN ORT_CACHE_DIR=/opt/onnxruntime /usr/local/bin/fetch-onnxruntime.sh --arch aarch64
ENV ORT_DYLIB_PATH=/opt/onnxruntime/aarch64/libonnxruntime.so.1.31.1
