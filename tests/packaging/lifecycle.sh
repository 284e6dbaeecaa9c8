#!/usr/bin/env bash
# lifecycle.sh deb|rpm VERSION: install, upgrade, remove (and for deb purge) the packages in
# /tmp/t (release 1, then release 2) on a throwaway root, as overlay-run.sh provides, and check
# the files at each step. No systemd runs here, so the package scripts only enable the unit.
# Prints one "ok   - ..." / "FAIL - ..." line per check.
set -u
kind=$1 version=$2
cd /tmp/t
failed=0

t() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok   - $kind: $name"
  else
    echo "FAIL - $kind: $name"
    [ -n "$out" ] && printf '%s\n' "$out" | tail -n 20 | sed 's/^/       /'
    failed=$((failed + 1))
  fi
}

wants=/etc/systemd/system/multi-user.target.wants/outpost.service

# What systemd leaves after the service's first start with DynamicUser=yes + StateDirectory=,
# with a store of the last schema-1 release (tests/fixtures/schema1) as the data file.
simulate_first_start() {
  install -d -m 0700 /var/lib/private /var/lib/private/outpost
  printf 'API_KEY=k\nAPI_JWT_SECRET=s\n' >/var/lib/private/outpost/credentials.env
  install -m 0600 /tmp/t/schema1-outpost.redb /var/lib/private/outpost/outpost.redb
  ln -s private/outpost /var/lib/outpost
}
# Migrating the data file is the service's business when it opens it (in-systemd.sh checks
# that); the package scripts leave it alone.
data_kept() { cmp /tmp/t/schema1-outpost.redb /var/lib/outpost/outpost.redb; }

common_install_checks() {
  t "installed /usr/bin/outpost prints 'outpost $version'" \
    test "$(/usr/bin/outpost --version)" = "outpost $version"
  t "the package scripts enabled outpost.service" test -L "$wants"
  t "the install message says where the admin key is" \
    grep -q "/var/lib/outpost/credentials.env" /tmp/t/install.log
  t "/etc/outpost/outpost.env is root-only (0600)" \
    test "$(stat -c %a:%U /etc/outpost/outpost.env)" = "600:root"
  t "/etc/outpost/outpost.toml sets data_dir /var/lib/outpost" \
    grep -qx "data_dir = '/var/lib/outpost'" /etc/outpost/outpost.toml
  t "/var/lib/outpost is not created by the package (systemd does it)" test ! -e /var/lib/outpost
}

case "$kind" in
deb)
  v1=$(ls outpost_*-1_amd64.deb) v2=$(ls outpost_*-2_amd64.deb)
  t "dpkg -i installs with no dependencies" sh -c "dpkg -i $v1 >/tmp/t/install.log 2>&1 || { cat /tmp/t/install.log; exit 1; }"
  common_install_checks
  simulate_first_start
  sed -i 's/^api_port = 3333$/api_port = 4444/' /etc/outpost/outpost.toml
  t "dpkg -i of release 2 upgrades" dpkg -i "$v2"
  t "the upgrade kept the edited conffile" grep -qx "api_port = 4444" /etc/outpost/outpost.toml
  t "the upgrade left no .dpkg-new/.dpkg-dist/.dpkg-old" test "$(ls /etc/outpost | sort | tr '\n' ' ')" = "outpost.env outpost.toml "
  t "the upgrade kept the data" test -f /var/lib/outpost/credentials.env
  t "the upgrade left the schema-1 data file as it was" data_kept
  t "dpkg -r removes" dpkg -r outpost
  t "remove deletes the binary and the unit" test ! -e /usr/bin/outpost -a ! -e /lib/systemd/system/outpost.service
  t "remove keeps the configuration" grep -qx "api_port = 4444" /etc/outpost/outpost.toml
  t "remove keeps the data and the admin key" test -f /var/lib/outpost/credentials.env
  t "dpkg --purge purges" dpkg --purge outpost
  t "purge deletes /etc/outpost" test ! -e /etc/outpost
  t "purge deletes /var/lib/outpost and /var/lib/private/outpost" \
    test ! -e /var/lib/outpost -a ! -L /var/lib/outpost -a ! -e /var/lib/private/outpost
  t "purge deletes the enable link" test ! -L "$wants"
  t "dpkg no longer knows outpost" sh -c '! dpkg-query -W outpost >/dev/null 2>&1'
  ;;
rpm)
  r1=$(ls outpost-*-1.x86_64.rpm) r2=$(ls outpost-*-2.x86_64.rpm)
  # --nodeps: this rpm database is empty, so even /bin/sh (the only requirement) is unknown.
  t "rpm -i installs" sh -c "rpm -i --nodeps $r1 >/tmp/t/install.log 2>&1 || { cat /tmp/t/install.log; exit 1; }"
  common_install_checks
  t "the unit is in /usr/lib/systemd/system" test -f /usr/lib/systemd/system/outpost.service
  simulate_first_start
  sed -i 's/^api_port = 3333$/api_port = 4444/' /etc/outpost/outpost.toml
  t "rpm -U of release 2 upgrades" rpm -U --nodeps "$r2"
  t "rpm -q says release 2" test "$(rpm -q outpost)" = "outpost-${version//-/\~}-2.x86_64"
  t "the upgrade kept the edited %config(noreplace) file" grep -qx "api_port = 4444" /etc/outpost/outpost.toml
  t "the upgrade left no .rpmnew/.rpmsave" test "$(ls /etc/outpost | sort | tr '\n' ' ')" = "outpost.env outpost.toml "
  t "the upgrade left the schema-1 data file as it was" data_kept
  t "rpm -e erases" rpm -e outpost
  t "erase deletes the binary and the unit" test ! -e /usr/bin/outpost -a ! -e /usr/lib/systemd/system/outpost.service
  t "erase disables the unit" test ! -L "$wants"
  t "erase keeps the data and the admin key" test -f /var/lib/outpost/credentials.env
  t "erase keeps the edited configuration as outpost.toml.rpmsave" \
    grep -qx "api_port = 4444" /etc/outpost/outpost.toml.rpmsave
  ;;
*)
  echo "usage: lifecycle.sh deb|rpm VERSION" >&2
  exit 2
  ;;
esac

[ "$failed" -eq 0 ]
