#!/usr/bin/env bash
# Boots Debian's kernel in qemu (TCG, no KVM needed) with the `vivid` virtual camera driver and
# runs examples/v4l2_probe inside it: facegate's real V4L2 source against a real kernel driver.
# Exits 0 only if the VM console shows "V4L2 OK". Kernel package and extracted tree are cached
# under target/vm/.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=target/vm
mkdir -p "$WORK/debs"
say() { printf '[vivid-vm] %s\n' "$*"; }
started=$(date +%s)

# 1. Debian's kernel: vmlinuz and the vivid module with its dependencies.
pkg=$(apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' | sort -V | tail -1)
if [ -z "$pkg" ]; then
  echo "FAIL: apt knows no linux-image-6.1.0-*-amd64 package; run 'apt-get update' first"
  exit 1
fi
version=${pkg#linux-image-}
kdir="$WORK/kernel-$version"
if [ ! -f "$kdir/boot/vmlinuz-$version" ]; then
  if ! ls "$WORK/debs/${pkg}"_*.deb >/dev/null 2>&1; then
    say "downloading $pkg"
    (cd "$WORK/debs" && apt-get download "$pkg")
  fi
  rm -rf "$kdir" && dpkg-deb -x "$(ls "$WORK/debs/${pkg}"_*.deb | head -1)" "$kdir"
fi
moddir="$kdir/lib/modules/$version"
# The package ships no modules.dep (dpkg's postinst makes it); build it for the extracted tree.
[ -f "$moddir/modules.dep" ] || /usr/sbin/depmod -b "$kdir" "$version"
deps=$(grep -E '/vivid\.ko(\.xz|\.zst)?:' "$moddir/modules.dep" | cut -d: -f2)
vivid=$(grep -E '/vivid\.ko(\.xz|\.zst)?:' "$moddir/modules.dep" | cut -d: -f1)
[ -n "$vivid" ] || { echo "FAIL: no vivid module in $pkg"; exit 1; }

# 2. The probe binary and the busybox initramfs.
say "building examples/v4l2_probe"
cargo build --release --example v4l2_probe
probe=target/release/examples/v4l2_probe
root="$WORK/initramfs"
rm -rf "$root" && mkdir -p "$root"/{bin,modules,proc,sys,dev,tmp}
cp /bin/busybox "$root/bin/busybox"
strip -o "$root/probe" "$probe"
for lib in $(ldd "$probe" | grep -oE '/[^ ]+'); do
  mkdir -p "$root$(dirname "$lib")" && cp -L "$lib" "$root$lib"
done
n=0
load=""
# modules.dep lists dependencies so that loading them last-to-first works.
for m in $(echo "$deps" | tr ' ' '\n' | tac) "$vivid"; do
  [ -n "$m" ] || continue
  n=$((n + 1))
  name=$(printf '%02d-%s' "$n" "$(basename "$m" | sed -E 's/\.(xz|zst)$//')")
  case "$m" in
    *.xz) xz -dc "$moddir/$m" >"$root/modules/$name" ;;
    *.zst) zstd -qdc "$moddir/$m" >"$root/modules/$name" ;;
    *) cp "$moddir/$m" "$root/modules/$name" ;;
  esac
  load="$load $name"
done
cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $load; do
  case \$m in *vivid.ko) insmod /modules/\$m n_devs=1 node_types=0x1 ;; *) insmod /modules/\$m ;; esac || echo "insmod \$m failed"
done
sleep 1
ls -l /dev/video* || echo "no /dev/video device"
/probe /dev/video0
echo "PROBE EXIT \$?"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$WORK/initramfs.cpio.gz"

# 3. Boot.
say "booting $version under qemu (tcg); modules:$load"
console="$WORK/console.log"
rm -f "$console"
timeout 480 qemu-system-x86_64 -accel tcg -cpu max -m 1024 -smp 1 -nographic -no-reboot -net none \
  -monitor none -serial "file:$console" \
  -kernel "$kdir/boot/vmlinuz-$version" -initrd "$WORK/initramfs.cpio.gz" \
  -append "console=ttyS0 panic=-1 quiet loglevel=3" </dev/null >/dev/null 2>&1 || true
tr -d '\r' <"$console" | grep -vE '^\s*$' | tail -n 30
took=$(($(date +%s) - started))
if grep -q '^V4L2 OK' <(tr -d '\r' <"$console"); then
  say "PASS in ${took}s: $(tr -d '\r' <"$console" | grep '^V4L2 OK')"
else
  say "FAIL after ${took}s: no 'V4L2 OK' line on the VM console ($console)"
  exit 1
fi
