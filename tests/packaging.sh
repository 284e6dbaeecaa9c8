#!/usr/bin/env bash
# Packaging test: the static binary, the .deb and .rpm built from packaging/, and the systemd
# unit. Prints one line per check and ends with "N passed, M failed"; exits non-zero if any
# check failed.
#
#   tests/packaging.sh
#
# 1. Builds target/static/outpost with scripts/build-static.sh, or reuses it when it is newer
#    than src/, Cargo.toml, Cargo.lock and the script; checks it is static and OpenSSL-free.
# 2. Builds the packages with packaging/build.sh (release 1 into target/packages/, release 2
#    into a temporary directory for the upgrade checks); checks their files, modes, conffiles,
#    versions and (absent) dependencies.
# 3. Unpacks both into scratch directories; runs the packaged binary; systemd-analyze verify
#    and security (offline) on the unit.
# 4. Runs the packaged binary as the unit does (smoke.py): READY=1 on $NOTIFY_SOCKET, the API,
#    owner-only credentials, a delivery to a host name, STOPPING=1 and a clean exit on SIGTERM.
# 5. As root, with unshare and overlayfs: installs, upgrades, removes and purges each package
#    with dpkg / rpm in a throwaway overlay of this machine (lifecycle.sh).
# 6. As root, with systemd-nspawn: boots that throwaway copy under systemd and runs the
#    installed service for real (in-systemd.sh): DynamicUser, sandbox, API and delivery,
#    operator commands, restart, stop, upgrade, remove, purge; then an upgrade with data in
#    it: release 1 with the schema-1 fixture (tests/fixtures/schema1) as its store, upgraded
#    to release 2, answering as the release that wrote it did.
# Steps 5 and 6 are skipped, with a note, when their tools or root are missing; step 6 also
# with OUTPOST_TEST_SKIP_NSPAWN=1 (for hosts where a container cannot boot).
#
# Debian packages needed beyond the Rust toolchain, a C compiler and libc6-dev (which the static
# build needs anyway): rpm (rpmbuild, rpm, rpm2cpio), cpio, file, binutils (readelf, objcopy),
# systemd (systemd-analyze, systemctl), systemd-container (systemd-nspawn), python3; dpkg and
# util-linux (unshare) are always there.
set -uo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
started=$(date +%s)

passed=0
failed=0
pass() { echo "ok   - $1"; passed=$((passed + 1)); }
fail() {
  echo "FAIL - $1"
  [ -n "${2:-}" ] && printf '%s\n' "$2" | tail -n 30 | sed 's/^/       /'
  failed=$((failed + 1))
}
# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$out"; fi
}
# tally COMMAND...: runs a script printing "ok   - " / "FAIL - " lines and counts them.
tally() {
  local out rc n
  out=$("$@" 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -E '^(ok   - |FAIL - |       |# )'
  n=$(printf '%s\n' "$out" | grep -c '^ok   - ')
  passed=$((passed + n))
  n=$(printf '%s\n' "$out" | grep -c '^FAIL - ')
  failed=$((failed + n))
  if [ "$rc" -ne 0 ] && [ "$n" -eq 0 ]; then
    fail "$* exited with status $rc" "$out"
  fi
}
finish() {
  echo "packaging test took $(($(date +%s) - started)) s"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
}

# ---- prerequisites
missing=
for tool in cargo dpkg-deb dpkg rpmbuild rpm rpm2cpio cpio file readelf objcopy ldd \
  systemd-analyze python3; do
  command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -n "$missing" ]; then
  fail "tools present" "missing:$missing (Debian: apt-get install rpm cpio file binutils systemd python3)"
  finish
fi

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
target_dir=${CARGO_TARGET_DIR:-target}
case $target_dir in /*) ;; *) target_dir=$repo/$target_dir ;; esac
version=$(awk -F'"' '/^\[/ { section = $0 } section == "[package]" && /^version *=/ { print $2; exit }' Cargo.toml)
pkgver=${version//-/\~}
echo "# outpost $version"

# ---- 1. static binary
bin=$target_dir/static/outpost
if [ -x "$bin" ] && [ -z "$(find src Cargo.toml Cargo.lock scripts/build-static.sh -newer "$bin" -print -quit)" ]; then
  echo "# reusing $bin (newer than the sources)"
else
  echo "# building $bin (scripts/build-static.sh)"
  if ! out=$(scripts/build-static.sh 2>&1); then
    fail "scripts/build-static.sh builds the static binary" "$out"
    finish
  fi
  pass "scripts/build-static.sh builds the static binary"
fi
echo "# static binary: $bin, $(stat -c %s "$bin") bytes"

check "file(1) says the binary is statically linked" \
  sh -c "file -L '$bin' | grep -E 'statically linked|static-pie linked' || { file -L '$bin'; exit 1; }"
check "ldd finds no shared libraries" \
  sh -c "out=\$(ldd '$bin' 2>&1); echo \"\$out\" | grep -qE 'statically linked|not a dynamic executable' || { echo \"\$out\"; exit 1; }"
check "no ELF interpreter (PT_INTERP)" sh -c "! readelf --program-headers --wide '$bin' | grep INTERP"
check "no shared-library dependency (DT_NEEDED)" sh -c "! readelf --dynamic --wide '$bin' | grep NEEDED"
check "Cargo.lock has no openssl or openssl-sys crate" sh -c '! grep -E "^name = \"openssl(-sys|-src)?\"$" Cargo.lock'
check "cargo tree -i openssl-sys finds nothing" \
  sh -c "out=\$(cargo tree --offline --locked -i openssl-sys 2>&1); echo \"\$out\" | grep -q 'did not match any packages' || { echo \"\$out\"; exit 1; }"
check "the static binary prints 'outpost $version'" test "$("$bin" --version 2>&1)" = "outpost $version"

# ---- 2. packages
pkgdir=$target_dir/packages
deb=$pkgdir/outpost_${pkgver}-1_amd64.deb
rpm=$pkgdir/outpost-${pkgver}-1.x86_64.rpm
upgrade=$scratch/packages
mkdir -p "$upgrade"
check "packaging/build.sh builds the .deb and .rpm" env OUTPOST_BINARY="$bin" OUTPOST_RELEASE=1 packaging/build.sh
check "packaging/build.sh builds release 2 (for the upgrade checks)" \
  env OUTPOST_BINARY="$bin" OUTPOST_RELEASE=2 OUTPOST_PACKAGES_DIR="$upgrade" packaging/build.sh
if [ ! -f "$deb" ] || [ ! -f "$rpm" ]; then
  fail "packages exist: $deb $rpm"
  finish
fi
cp "$deb" "$rpm" "$upgrade/"
echo "# $deb: $(stat -c %s "$deb") bytes; $rpm: $(stat -c %s "$rpm") bytes"

# .deb metadata and contents
listing=$(dpkg-deb -c "$deb")
for entry in \
  "-rwxr-xr-x root/root ./usr/bin/outpost" \
  "-rw-r--r-- root/root ./lib/systemd/system/outpost.service" \
  "-rw-r--r-- root/root ./etc/outpost/outpost.toml" \
  "-rw------- root/root ./etc/outpost/outpost.env"; do
  mode=${entry%% *} rest=${entry#* } owner=${rest%% *} path=${rest#* }
  check "deb contains $path ($mode $owner)" \
    sh -c "printf '%s\n' \"\$1\" | awk -v m='$mode' -v o='$owner' -v p='$path' '\$1 == m && \$2 == o && \$6 == p { f = 1 } END { exit !f }'" _ "$listing"
done
check "deb does not ship /var/lib/outpost (systemd's StateDirectory)" \
  sh -c "! printf '%s\n' \"\$1\" | grep -q 'var/lib'" _ "$listing"
check "deb conffiles: /etc/outpost/outpost.toml and outpost.env" \
  test "$(dpkg-deb -I "$deb" conffiles | sort | tr '\n' ' ')" = "/etc/outpost/outpost.env /etc/outpost/outpost.toml "
check "deb Version is $pkgver-1 (Cargo.toml)" test "$(dpkg-deb -f "$deb" Version)" = "$pkgver-1"
check "deb Architecture is amd64" test "$(dpkg-deb -f "$deb" Architecture)" = amd64
check "deb has no dependencies" \
  test -z "$(dpkg-deb -f "$deb" Depends Pre-Depends Recommends)"
check "deb has postinst, prerm and postrm" \
  sh -c "dpkg-deb -I '$deb' | grep -q ' postinst ' && dpkg-deb -I '$deb' | grep -q ' prerm ' && dpkg-deb -I '$deb' | grep -q ' postrm '"

# .rpm metadata and contents
rpmq() { rpm -qp "$@" "$rpm" 2>/dev/null; }
files=$(rpmq -l)
for path in /usr/bin/outpost /usr/lib/systemd/system/outpost.service /etc/outpost/outpost.toml /etc/outpost/outpost.env; do
  check "rpm contains $path" sh -c "printf '%s\n' \"\$1\" | grep -qx '$path'" _ "$files"
done
check "rpm configfiles: /etc/outpost/outpost.toml and outpost.env" \
  test "$(rpmq --configfiles | sort | tr '\n' ' ')" = "/etc/outpost/outpost.env /etc/outpost/outpost.toml "
check "rpm config files are %config(noreplace)" \
  test "$(rpmq --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' | awk '/^\/etc\/outpost\/outpost\./ { print $2 }' | sort -u)" = cn
check "rpm modes: binary 0755, outpost.env 0600, all root" \
  test "$(rpmq --qf '[%{FILENAMES} %{FILEMODES:perms} %{FILEUSERNAME}\n]' | awk '$1 == "/usr/bin/outpost" || $1 == "/etc/outpost/outpost.env" { print $2, $3 }' | tr '\n' ' ')" \
  = "-rw------- root -rwxr-xr-x root "
check "rpm Version-Release is $pkgver-1" test "$(rpmq --qf '%{VERSION}-%{RELEASE}')" = "$pkgver-1"
check "rpm requires nothing but /bin/sh for its scripts" \
  test -z "$(rpmq -R | grep -v -e '^/bin/sh$' -e '^rpmlib(')"

# ---- 3. unpacked files
debroot=$scratch/deb rpmroot=$scratch/rpm
mkdir -p "$debroot" "$rpmroot"
check "dpkg -x unpacks the .deb" dpkg -x "$deb" "$debroot"
check "rpm2cpio | cpio unpacks the .rpm" sh -c "rpm2cpio '$rpm' | (cd '$rpmroot' && cpio -idm --quiet)"
check "the .deb's /usr/bin/outpost prints 'outpost $version'" \
  test "$("$debroot/usr/bin/outpost" --version 2>&1)" = "outpost $version"
check "the .rpm's /usr/bin/outpost prints 'outpost $version'" \
  test "$("$rpmroot/usr/bin/outpost" --version 2>&1)" = "outpost $version"
check "both packages carry the static binary unchanged" \
  sh -c "cmp '$bin' '$debroot/usr/bin/outpost' && cmp '$bin' '$rpmroot/usr/bin/outpost'"
check "both packages carry systemd/outpost.service unchanged" \
  sh -c "cmp systemd/outpost.service '$debroot/lib/systemd/system/outpost.service' && cmp systemd/outpost.service '$rpmroot/usr/lib/systemd/system/outpost.service'"
check "the packaged outpost.toml loads and sets DATA_DIR=/var/lib/outpost" \
  sh -c "env -u DATA_DIR '$debroot/usr/bin/outpost' config --config '$debroot/etc/outpost/outpost.toml' | grep -q '^DATA_DIR=/var/lib/outpost '"
check "the packaged outpost.toml denies deliveries to loopback (127.0.0.0/8, ::1)" \
  sh -c "env -u DELIVERY_DENY_CIDRS '$debroot/usr/bin/outpost' config --config '$debroot/etc/outpost/outpost.toml' | grep -q '^DELIVERY_DENY_CIDRS=0\.0\.0\.0/8,169\.254\.0\.0/16,.*,127\.0\.0\.0/8,::1/128 '"

# systemd-analyze verify needs ExecStart's binary to exist: verify a copy pointing at the
# unpacked one.
unitdir=$scratch/unit
mkdir -p "$unitdir"
sed "s|^ExecStart=/usr/bin/outpost |ExecStart=$debroot/usr/bin/outpost |" systemd/outpost.service >"$unitdir/outpost.service"
check "the unit arms the systemd watchdog (WatchdogSec=30s)" grep -qx 'WatchdogSec=30s' systemd/outpost.service
check "systemd-analyze verify systemd/outpost.service" \
  sh -c "out=\$(systemd-analyze verify '$unitdir/outpost.service' 2>&1); [ -z \"\$out\" ] || { echo \"\$out\"; exit 1; }"
exposure=$(systemd-analyze security --offline=true "$unitdir/outpost.service" 2>/dev/null |
  sed -n 's/.*Overall exposure level for outpost.service: \([0-9.]*\).*/\1/p')
echo "# systemd-analyze security --offline=true: exposure $exposure"
check "unit exposure score ($exposure) is at most 2.0" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }'

# ---- 4. the packaged binary run as the unit runs it
smoke=$scratch/smoke
mkdir -p "$smoke"
tally python3 tests/packaging/smoke.py "$debroot/usr/bin/outpost" "$debroot/etc/outpost/outpost.toml" "$smoke"

# ---- 5 and 6. install, upgrade, remove, purge on a throwaway copy of this machine
if [ "$(id -u)" -ne 0 ] || ! command -v unshare >/dev/null || ! grep -qw overlay /proc/filesystems; then
  echo "# skipped: package installs (need root, unshare and overlayfs)"
  finish
fi
# A data file of the last schema-1 release, to upgrade with data in place.
cp tests/fixtures/schema1/outpost.redb "$upgrade/schema1-outpost.redb"
cp tests/fixtures/schema1/manifest.json "$upgrade/schema1-manifest.json"
tally unshare --mount --fork bash tests/packaging/overlay-run.sh "$upgrade" tests/packaging/lifecycle.sh deb "$version"
tally unshare --mount --fork bash tests/packaging/overlay-run.sh "$upgrade" tests/packaging/lifecycle.sh rpm "$version"

if [ -n "${OUTPOST_TEST_SKIP_NSPAWN:-}" ]; then
  echo "# skipped: the service under systemd (OUTPOST_TEST_SKIP_NSPAWN is set)"
  finish
fi
if ! command -v systemd-nspawn >/dev/null; then
  echo "# skipped: the service under systemd (needs systemd-nspawn: apt-get install systemd-container)"
  finish
fi
cp tests/packaging/in-systemd.sh tests/packaging/deliver.py tests/packaging/answers.py "$upgrade/"
boot_log=$scratch/boot.log
unshare --mount --fork bash tests/packaging/systemd-boot.sh "$upgrade" >"$boot_log" 2>&1
if [ -s "$upgrade/results.log" ]; then
  tally cat "$upgrade/results.log"
  grep -qE '^(ok   - |FAIL - )systemd: with data: dpkg --purge' "$upgrade/results.log" ||
    fail "the systemd test ran to its end" "$(tail -n 20 "$boot_log")"
else
  fail "systemd-nspawn boots a copy of this machine and runs the service test" "$(tail -n 20 "$boot_log")"
fi
finish
