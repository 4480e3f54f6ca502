#!/usr/bin/env bash
# Prepare an ARM (Zynq-7000, multi_v7_defconfig) kernel tree for out-of-tree module builds, once.
# Usage: gen/firmware/src/prepare-arm-kernel.sh DEST   (default build/linux-arm)
# Needs Debian's linux-source, gcc-arm-linux-gnueabihf, bc, bison, flex, libssl-dev, libelf-dev.
# The tree is cached: a DEST/.prepared stamp makes later calls return at once.
set -euo pipefail
dest=${1:-build/linux-arm}
src=$(ls /usr/src/linux-source-*.tar.xz 2>/dev/null | sort -V | tail -1)
[ -n "$src" ] || { echo "no /usr/src/linux-source-*.tar.xz (apt-get install linux-source)" >&2; exit 1; }
if [ -f "$dest/.prepared" ] && [ "$(cat "$dest/.prepared")" = "$src" ]; then
    echo "ARM kernel tree ready in $dest"; exit 0
fi
rm -rf "$dest"; mkdir -p "$dest"
# the self-tests are not needed to build modules (Documentation/ and the other arches are: Kconfig sources them)
excl=(--exclude='*/tools/testing')
tar -xJf "$src" -C "$dest" --strip-components=1 "${excl[@]}"
make -s -C "$dest" ARCH=arm CROSS_COMPILE=arm-linux-gnueabihf- multi_v7_defconfig
make -s -C "$dest" ARCH=arm CROSS_COMPILE=arm-linux-gnueabihf- -j"$(nproc)" modules_prepare
echo "$src" > "$dest/.prepared"
echo "ARM kernel tree ready in $dest"
