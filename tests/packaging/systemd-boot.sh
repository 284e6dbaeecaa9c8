#!/usr/bin/env bash
# systemd-boot.sh DIR: boots a throwaway copy of this machine under systemd-nspawn and runs
# DIR/in-systemd.sh in it as a unit, with DIR mounted on /results; the script writes its check
# lines to DIR/results.log. The copy is an overlay of / whose writes go to a tmpfs; run this
# under `unshare --mount --fork` so every mount dies with the namespace. The container boots
# only basic.target plus the test (no host services), has only a loopback network, and powers
# off when the test ends.
set -euo pipefail
dir=$1
base=$(mktemp -d)
mount -t tmpfs -o mode=0755 tmpfs "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
# nspawn keeps state in /run/systemd/nspawn: keep it off the host.
mount -t tmpfs -o mode=0755 tmpfs /run
r=$base/root
units=$r/etc/systemd/system

# A fresh machine id, so the container does not claim the host's.
: >"$r/etc/machine-id"
cat >"$units/outpost-test.target" <<'UNIT'
[Unit]
Description=outpost package test
Requires=basic.target outpost-test.service
After=basic.target
AllowIsolate=yes
UNIT
cat >"$units/outpost-test.service" <<'UNIT'
[Unit]
Description=outpost package test script
After=basic.target
[Service]
Type=oneshot
ExecStart=/bin/bash /results/in-systemd.sh
ExecStopPost=/bin/systemctl --no-block poweroff
StandardOutput=file:/results/results.log
StandardError=journal
TimeoutStartSec=240
UNIT
# Nothing waits for a network the container does not have.
for s in systemd-networkd-wait-online NetworkManager-wait-online ifupdown-wait-online networking; do
  ln -sf /dev/null "$units/$s.service"
done

rc=0
timeout 300 systemd-nspawn --quiet --register=no --keep-unit --link-journal=no \
  --private-network --directory="$r" --bind="$dir:/results" \
  --boot systemd.unit=outpost-test.target || rc=$?
# The mounts die with the namespace; the empty mount point is on the host.
umount -R "$base" && rmdir "$base"
exit "$rc"
