#!/usr/bin/env bash
# overlay-run.sh DIR SCRIPT ARGS...: runs SCRIPT ARGS as root in a throwaway copy of this
# machine (an overlay of / whose writes go to a tmpfs), with the files of DIR in /tmp/t. Run it
# under `unshare --mount --fork`: every mount, and so every change, dies with the namespace.
# /run is empty inside, so package scripts see no running systemd.
set -euo pipefail
dir=$1 script=$2
shift 2
base=$(mktemp -d)
mount -t tmpfs -o mode=0755 tmpfs "$base"
mkdir "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
mount -t proc proc "$base/root/proc"
mount --rbind /dev "$base/root/dev"
mount -t tmpfs -o mode=0755 tmpfs "$base/root/run"
mount -t tmpfs -o mode=1777 tmpfs "$base/root/tmp"
mkdir "$base/root/tmp/t"
cp "$dir"/* "$base/root/tmp/t/"
cp "$script" "$base/root/tmp/t/script"
rc=0
chroot "$base/root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
  /bin/bash /tmp/t/script "$@" || rc=$?
# The mounts die with the namespace; the empty mount point is on the host.
umount -R "$base" && rmdir "$base"
exit "$rc"
