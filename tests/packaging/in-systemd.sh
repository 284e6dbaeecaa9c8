#!/usr/bin/env bash
# in-systemd.sh: runs inside the container systemd-boot.sh boots (systemd is PID 1). Installs
# /results/outpost_*-1_amd64.deb, checks the running service (Type=notify, DynamicUser, state
# directory, sandbox, API and a delivery, operator commands as root, restart, stop), upgrades
# to release 2, removes and purges. Then installs release 1 again, puts a schema-1 data file
# (/results/schema1-outpost.redb) in place as its store, upgrades to release 2 over it and
# checks the answers, outpost check and a delivery ("with data: ..."), and purges.
# One "ok   - ..." / "FAIL - ..." line per check on stdout.
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

# The packaged outpost.toml denies deliveries to loopback; this test's receivers listen on it,
# so the service may reach loopback here (a drop-in of the test's, not of the package).
t "a drop-in allows the test's loopback receivers (DELIVERY_ALLOW_CIDRS)" sh -c "
  mkdir -p /etc/systemd/system/outpost.service.d &&
  printf '[Service]\nEnvironment=DELIVERY_ALLOW_CIDRS=127.0.0.1/32,::1/128\n' \
    >/etc/systemd/system/outpost.service.d/test-loopback.conf"

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
t "the systemd watchdog is armed (WatchdogSec=30s)" test "$(prop WatchdogUSec)" = 30s
# The process metrics read only /proc/self (ProcSubset=pid hides the rest of /proc).
t "GET /metrics inside the sandbox has the process metrics and the store's figures" python3 -c '
import sys, urllib.request
request = urllib.request.Request("http://127.0.0.1:3333/metrics", headers={"Authorization": "Bearer " + sys.argv[1]})
text = urllib.request.urlopen(request, timeout=10).read().decode()
wanted = ["process_start_time_seconds ", "process_resident_memory_bytes ", "process_open_fds ",
          "outpost_data_file_bytes ", "outpost_data_filesystem_free_bytes ",
          "outpost_worker_healthy{worker=\"store-writer\"} 1"]
missing = [w for w in wanted if w not in text]
sys.exit("missing: %s" % missing if missing else 0)
' "$key"
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

# ---- Upgrade with data in it: release 1 installed, a schema-1 data file (the fixture
# /results/schema1-outpost.redb, written by the last release with schema 1; what it holds and
# what that release answered: /results/schema1-manifest.json) put in place as the service's
# store, release 2 installed over it. The release after schema 1 migrates such a file when it
# first opens it; today's binary reads it as it is. Either way the service must answer as the
# writing release did, pass `outpost check` and keep delivering.
manifest=/results/schema1-manifest.json
fixture_key=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["admin_api_key"])' "$manifest")
# The copy of the schema-1 file the migrating release keeps beside the store.
schema1_copy=outpost.redb.schema1
state=/var/lib/private/outpost

t "with data: dpkg -i of release 1 starts the service" sh -c "
  dpkg -i $v1 >/tmp/install.log 2>&1 && [ \"\$(systemctl is-active outpost.service)\" = active ] || { cat /tmp/install.log; exit 1; }"
# As an operator would: the admin key the data was written with in outpost.env (the secrets
# file; it wins over the key generated into credentials.env), and no log retention in
# outpost.toml: the fixture's events were ingested on 2026-11-30 and must not expire, whatever
# the date of the run.
t "with data: API_KEY set in outpost.env, log_retention_ttl_days = 0 in outpost.toml" sh -c "
  printf 'API_KEY=%s\n' '$fixture_key' >>/etc/outpost/outpost.env &&
  sed -i 's/^log_retention_ttl_days = .*/log_retention_ttl_days = 0/' /etc/outpost/outpost.toml &&
  grep -qx 'log_retention_ttl_days = 0' /etc/outpost/outpost.toml"
t "with data: systemctl stop, then the schema-1 file as the store (the state directory's owner, 0600)" sh -c "
  systemctl stop outpost.service && [ -d $state ] &&
  install -m 0600 -o \$(stat -c %u $state) -g \$(stat -c %g $state) /results/schema1-outpost.redb $state/outpost.redb"
t "with data: dpkg -i of release 2 upgrades and the service is active on the schema-1 file" sh -c "
  dpkg -i $v2 >/tmp/upgrade.log 2>&1 &&
  [ \"\$(dpkg-query -W -f '\${Version}' outpost)\" = \"\$(dpkg-deb -f $v2 Version)\" ] &&
  [ \"\$(systemctl is-active outpost.service)\" = active ] || { cat /tmp/upgrade.log; systemctl status outpost.service; exit 1; }"

# Every answer the writing release gave, as parsed JSON. Deliveries still queued in the file go
# on after the start; what they can change:
# - evt-failing to d-fail waits for its automatic retry, due at a fixed instant recorded in the
#   queue (an hour after the fixture was written, 2026-11-30T21:12Z): from then on it is made
#   right after the start (its receiver is gone: it fails and is retried later), and adds to
#   the attempts of acme and of evt-failing. Those two answers must hold the recorded attempts
#   exactly, with attempts of that pair only in front of them.
# - evt-inflight to d-hang (in flight when the writer was killed) is made right after the start
#   and adds an attempt to globex's log; no recorded answer lists globex's attempts, and an
#   attempt does not change the event, its tenant or its destination: all else stays exact.
while IFS= read -r path; do
  case $path in
  "/attempts?tenant_id=acme" | "/attempts?event_id=evt-failing&include=event.data")
    t "with data: GET /api/v1$path: 200, the recorded attempts (plus evt-failing's retries)" \
      python3 /results/answers.py http://127.0.0.1:3333 "$fixture_key" "$manifest" "$path" evt-failing/d-fail
    ;;
  *)
    t "with data: GET /api/v1$path: 200 and the recorded body" \
      python3 /results/answers.py http://127.0.0.1:3333 "$fixture_key" "$manifest" "$path"
    ;;
  esac
done < <(python3 -c 'import json, sys; print("\n".join(json.load(open(sys.argv[1]))["answers"]))' "$manifest")

# outpost check needs the store closed. As the service user: with DynamicUser= that user exists
# only while a unit runs with it, and /var/lib/private is root's (0700), so a transient unit
# with the same dynamic user (User=outpost, the name outpost.service's user gets) and state
# directory runs the packaged binary with the packaged configuration.
t "with data: outpost check as the service user (systemd-run, DynamicUser, package config)" sh -c "
  systemctl stop outpost.service &&
  systemd-run --quiet --wait --pipe --collect -p DynamicUser=yes -p User=outpost \
    -p StateDirectory=outpost -p Environment=DATA_DIR=/var/lib/outpost \
    /usr/bin/outpost check --config /etc/outpost/outpost.toml >/tmp/check.log 2>&1 &&
  grep -qx '/var/lib/outpost/outpost.redb: ok' /tmp/check.log || { cat /tmp/check.log; exit 1; }"
# The upgrade to schema 2 keeps the schema-1 file, byte for byte (what an operator rolls back
# to), as $schema1_copy beside the converted one.
t "with data: the schema-1 file is kept as $schema1_copy (unchanged, the service user's, 0600)" sh -c "
  cmp /results/schema1-outpost.redb $state/$schema1_copy &&
  [ \"\$(stat -c %a:%u $state/$schema1_copy)\" = \"600:\$(stat -c %u $state)\" ]"

t "with data: the service starts again, takes a publish and delivers it" sh -c "
  systemctl start outpost.service && python3 /results/deliver.py http://127.0.0.1:3333 '$fixture_key'"
t "with data: dpkg --purge deletes data and configuration" sh -c "
  dpkg --purge outpost >/dev/null && [ ! -e /var/lib/outpost ] && [ ! -L /var/lib/outpost ] &&
  [ ! -e $state ] && [ ! -e /etc/outpost ]"

[ "$failed" -eq 0 ]
