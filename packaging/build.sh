#!/usr/bin/env bash
# Builds the outpost .deb and .rpm into target/packages/ from the static binary:
#
#   packaging/build.sh
#     -> target/packages/outpost_<version>-<release>_amd64.deb
#     -> target/packages/outpost-<version>-<release>.x86_64.rpm
#
# <version> is Cargo.toml's (a pre-release "1.2.0-rc.1" becomes "1.2.0~rc.1", which sorts
# before "1.2.0" in both dpkg and rpm); <release> is $OUTPOST_RELEASE, default 1.
# OUTPOST_PACKAGES_DIR changes the output directory.
# The binary is built with scripts/build-static.sh, unless OUTPOST_BINARY names one already
# built (it must print "outpost <version>"). Needs dpkg-deb and rpmbuild (Debian: apt-get
# install rpm); no cargo-deb or cargo-generate-rpm. Packages are built without root: files are
# owned by root in the archives whoever runs this.
#
# Both packages contain the same files and have no runtime dependencies:
#   /usr/bin/outpost                        static x86_64 binary
#   /lib/systemd/system/outpost.service     (rpm: /usr/lib/systemd/system/outpost.service)
#   /etc/outpost/outpost.toml               conffile / %config(noreplace), 0644
#   /etc/outpost/outpost.env                conffile / %config(noreplace), 0600, for secrets
#   /usr/share/doc/outpost/{install.md,README.md,copyright}
# /var/lib/outpost is not in the packages: the unit has DynamicUser=yes and StateDirectory=,
# so systemd creates it (as /var/lib/private/outpost plus a symlink) owned by the service's
# user when the service first starts.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "packaging/build.sh: $*" >&2; exit 1; }
command -v dpkg-deb >/dev/null || die "dpkg-deb not found (Debian: apt-get install dpkg)"
command -v rpmbuild >/dev/null || die "rpmbuild not found (Debian: apt-get install rpm)"

version=$(awk -F'"' '/^\[/ { section = $0 } section == "[package]" && /^version *=/ { print $2; exit }' Cargo.toml)
[ -n "$version" ] || die "no version in Cargo.toml"
pkgver=${version//-/\~}
release=${OUTPOST_RELEASE:-1}

if [ -n "${OUTPOST_BINARY:-}" ]; then
  bin=$OUTPOST_BINARY
else
  scripts/build-static.sh
  bin=${CARGO_TARGET_DIR:-target}/static/outpost
fi
[ -x "$bin" ] || die "$bin is not an executable"
got=$("$bin" --version)
[ "$got" = "outpost $version" ] || die "$bin --version says '$got', Cargo.toml says $version: rebuild it"

out=${OUTPOST_PACKAGES_DIR:-${CARGO_TARGET_DIR:-target}/packages}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Reproducible timestamps: the last commit's time unless the caller sets one.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

# The packaged outpost.toml: the example with every setting and its comment, a header about the
# package, the package's data directory, and loopback added to the denied delivery addresses (a
# server's deliveries have no business with its own local services; allow one with
# delivery_allow_cidrs).
config="$work/outpost.toml"
{
  cat packaging/outpost.toml.header
  sed -e "s|^data_dir = .*|data_dir = '/var/lib/outpost'|" \
      -e "s|^delivery_deny_cidrs = '\(.*\)'\$|# The package adds loopback (127.0.0.0/8, ::1) to the built-in list.\\
delivery_deny_cidrs = '\1,127.0.0.0/8,::1/128'|" \
      -e '/^# Copy to outpost.toml (working directory) or pass --config PATH\.$/d' \
      outpost.toml.example
} >"$config"
grep -qx "data_dir = '/var/lib/outpost'" "$config" || die "outpost.toml.example has no data_dir line"
grep -q "^delivery_deny_cidrs = '.*,127\.0\.0\.0/8,::1/128'\$" "$config" \
  || die "outpost.toml.example has no delivery_deny_cidrs line"

# stage ROOT UNITDIR: the file tree of one package.
stage() {
  local root=$1 unitdir=$2
  install -d -m 0755 "$root/usr/bin" "$root$unitdir" "$root/etc/outpost" "$root/usr/share/doc/outpost"
  install -m 0755 "$bin" "$root/usr/bin/outpost"
  install -m 0644 systemd/outpost.service "$root$unitdir/outpost.service"
  install -m 0644 "$config" "$root/etc/outpost/outpost.toml"
  install -m 0600 packaging/outpost.env "$root/etc/outpost/outpost.env"
  install -m 0644 docs/install.md README.md packaging/copyright "$root/usr/share/doc/outpost/"
  find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
}

# ---- .deb
deb_root="$work/deb"
stage "$deb_root" /lib/systemd/system
install -d -m 0755 "$deb_root/DEBIAN"
installed_kib=$(du -s -k --exclude=DEBIAN "$deb_root" | cut -f1)
cat >"$deb_root/DEBIAN/control" <<CONTROL
Package: outpost
Version: $pkgver-$release
Architecture: amd64
Maintainer: ${OUTPOST_MAINTAINER:-outpost maintainers <maintainers@localhost>}
Installed-Size: $installed_kib
Section: net
Priority: optional
Description: event and webhook delivery (Outpost v1 API) in one binary
 outpost delivers a platform's events to its customers' endpoints: tenants,
 destinations subscribed to topics, signed webhook deliveries with retries, and
 a log of events and attempts, behind the Outpost v1 API. One static binary and
 one embedded redb file in /var/lib/outpost; no Redis, Postgres or message
 queue, and no runtime dependencies. Runs as the systemd service
 outpost.service (DynamicUser, sandboxed).
CONTROL
printf '%s\n' /etc/outpost/outpost.toml /etc/outpost/outpost.env >"$deb_root/DEBIAN/conffiles"
install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$deb_root/DEBIAN/"
(cd "$deb_root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
  >"$deb_root/DEBIAN/md5sums"
chmod 0644 "$deb_root/DEBIAN/control" "$deb_root/DEBIAN/conffiles" "$deb_root/DEBIAN/md5sums"
deb="$out/outpost_${pkgver}-${release}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$deb_root" "$deb" >/dev/null

# ---- .rpm
rpm_root="$work/rpm"
stage "$rpm_root" /usr/lib/systemd/system
rpmbuild -bb --quiet \
  --define "_topdir $work/rpmbuild" \
  --define "_rpmdir $work/rpms" \
  --define "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
  --define "outpost_version $pkgver" \
  --define "outpost_release $release" \
  --define "outpost_stage $rpm_root" \
  --define "use_source_date_epoch_as_buildtime 1" \
  --define "clamp_mtime_to_source_date_epoch 1" \
  packaging/rpm/outpost.spec
rpm="$out/outpost-${pkgver}-${release}.x86_64.rpm"
mv -f "$work/rpms/outpost-${pkgver}-${release}.x86_64.rpm" "$rpm"

for p in "$deb" "$rpm"; do
  echo "package: $p ($(stat -c %s "$p") bytes)"
done
