#!/usr/bin/env bash
# in-systemd.sh: runs inside the container systemd-boot.sh boots (systemd is PID 1). Installs
# /results/outpost_*-1_amd64.deb, checks the running service (Type=notify, DynamicUser, state
# directory, sandbox, API and a delivery, operator commands as root, restart, stop), upgrades
# to release 2, removes and purges. One "ok   - ..." / "FAIL - ..." line per check on stdout.
set -u
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
cd /results
failed=0

t() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    echo "ok   - systemd: $name"
  else
    echo "FAIL - systemd: $name"
    [ -n "$out" ] && printf '%s\n' "$out" | tail -n 20 | sed 's/^/       /'
    failed=$((failed + 1))
  fi
}
prop() { systemctl show -p "$1" --value outpost.service; }
journal() { journalctl -u outpost.service --no-pager -o cat | tail -n 20; }

v1=$(ls outpost_*-1_amd64.deb) v2=$(ls outpost_*-2_amd64.deb)

t "dpkg -i starts the service (postinst)" sh -c "dpkg -i $v1 >/tmp/install.log 2>&1 || { cat /tmp/install.log; exit 1; }"
t "the install message says the service runs" grep -q "Service:       running" /tmp/install.log
t "the install message names the key file" \
  grep -q "written to /var/lib/outpost/credentials.env" /tmp/install.log
t "outpost.service is active (Type=notify: READY=1 arrived)" \
  sh -c "[ \"\$(systemctl is-active outpost.service)\" = active ] && [ \"\$(systemctl show -p Type --value outpost.service)\" = notify ] || { systemctl status outpost.service; exit 1; }"
t "outpost.service is enabled" systemctl is-enabled --quiet outpost.service

pid=$(prop MainPID)
uid=$(awk '/^Uid:/ { print $2 }' "/proc/$pid/status")
t "runs as a dynamic user, not root (uid $uid)" test "$uid" -ge 61184 -a "$uid" -le 65519
t "no capabilities, no_new_privs, seccomp filter" sh -c "
  grep -qx 'CapEff:	0000000000000000' /proc/$pid/status &&
  grep -qx 'CapBnd:	0000000000000000' /proc/$pid/status &&
  grep -qx 'NoNewPrivs:	1' /proc/$pid/status &&
  grep -qx 'Seccomp:	2' /proc/$pid/status || { grep -E 'Cap|NoNew|Seccomp' /proc/$pid/status; exit 1; }"
t "/var/lib/outpost links to /var/lib/private/outpost" \
  test "$(readlink /var/lib/outpost)" = private/outpost
t "the state directory is 0700 and the service user's" \
  test "$(stat -c %a:%u /var/lib/private/outpost)" = "700:$uid"
t "credentials.env is 0600 and the service user's" \
  test "$(stat -c %a:%u /var/lib/outpost/credentials.env)" = "600:$uid"
key=$(sed -n 's/^API_KEY=//p' /var/lib/outpost/credentials.env)
t "credentials.env holds the admin key" test -n "$key"

t "API answers and a webhook is delivered from inside the sandbox" \
  python3 /results/deliver.py "http://127.0.0.1:3333" "$key"
t "outpost token (root, package config)" \
  sh -c "outpost token acme --config /etc/outpost/outpost.toml | grep -q '^ey'"
t "outpost backup of the running server (root, package config)" \
  outpost backup --config /etc/outpost/outpost.toml --to /root/outpost-backup.redb
t "outpost check of the backup" outpost check --config /etc/outpost/outpost.toml --file /root/outpost-backup.redb

exposure=$(systemd-analyze security outpost.service 2>/dev/null | sed -n 's/.*Overall exposure level for outpost.service: \([0-9.]*\).*/\1/p')
echo "# systemd-analyze security outpost.service (running service): exposure $exposure"
t "exposure score $exposure is at most 2.0" awk -v e="$exposure" 'BEGIN { exit !(e != "" && e <= 2.0) }'

t "systemctl restart: active again, same key" sh -c "
  systemctl restart outpost.service && [ \"\$(systemctl is-active outpost.service)\" = active ] &&
  grep -qx 'API_KEY=$key' /var/lib/outpost/credentials.env"
start=$(date +%s)
t "systemctl stop: clean exit well within TimeoutStopSec" sh -c "
  systemctl stop outpost.service && [ \"\$(systemctl show -p Result --value outpost.service)\" = success ] &&
  [ \$(( \$(date +%s) - $start )) -lt 30 ] || { systemctl status outpost.service; exit 1; }"
t "journal: shutdown logged, no seccomp/permission errors" sh -c "
  journalctl -u outpost.service --no-pager -o cat > /tmp/j.log
  grep -q 'SIGTERM received' /tmp/j.log && ! grep -qiE 'operation not permitted|permission denied|bad system call' /tmp/j.log || { tail -n 20 /tmp/j.log; exit 1; }"
t "outpost restore --replace as root hands the store to the service user, which starts again" sh -c "
  outpost restore --config /etc/outpost/outpost.toml --from /root/outpost-backup.redb --replace &&
  [ \"\$(stat -c %u /var/lib/private/outpost/outpost.redb)\" = \"\$(stat -c %u /var/lib/private/outpost)\" ] &&
  systemctl start outpost.service && [ \"\$(systemctl is-active outpost.service)\" = active ] || { journalctl -u outpost.service --no-pager -o cat | tail -n 5; exit 1; }"
pid=$(prop MainPID)

sed -i 's/^log_level = .*/log_level = '"'"'debug'"'"'/' /etc/outpost/outpost.toml
t "dpkg -i of release 2 upgrades and restarts the service" sh -c "
  dpkg -i $v2 >/tmp/upgrade.log 2>&1 && [ \"\$(systemctl is-active outpost.service)\" = active ] &&
  [ \"\$(systemctl show -p MainPID --value outpost.service)\" != $pid ] || { cat /tmp/upgrade.log; exit 1; }"
t "the upgrade kept the edited outpost.toml" grep -qx "log_level = 'debug'" /etc/outpost/outpost.toml
t "the upgrade kept the data and the key" grep -qx "API_KEY=$key" /var/lib/outpost/credentials.env

t "dpkg -r stops the service" sh -c "dpkg -r outpost >/dev/null && ! systemctl is-active --quiet outpost.service"
t "remove keeps the data and the configuration" \
  test -f /var/lib/private/outpost/outpost.redb -a -f /etc/outpost/outpost.toml
t "dpkg --purge deletes data and configuration" sh -c "
  dpkg --purge outpost >/dev/null && [ ! -e /var/lib/outpost ] && [ ! -L /var/lib/outpost ] &&
  [ ! -e /var/lib/private/outpost ] && [ ! -e /etc/outpost ]"

[ "$failed" -eq 0 ]
