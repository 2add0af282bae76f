#!/bin/bash
# Installs one backup job on the backup server: its runner config, the
# source's pinned SSH host key, and the backup_<job> service and timer
# (the seed's backup_main.service/.timer), enabled and started.
# Idempotent. Logs to stderr; stdout carries one JSON line for Pulumi.
#
# Inputs (set by components/backupJob.ts): JOB, SCHEDULE, MOUNT_POINT, and the
# files JOB_CONF, KNOWN_HOSTS, SERVICE_UNIT, TIMER_UNIT.
set -euo pipefail

: "${CONFIG_DIR:=/etc/pullsnap}"
: "${STATE_DIR:=/var/lib/pullsnap}"
: "${UNIT_DIR:=/etc/systemd/system}"

log() { echo "[job $JOB] $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

main() {
	systemd-analyze calendar "$SCHEDULE" >/dev/null 2>&1 ||
		die "schedule \"$SCHEDULE\" is not a systemd OnCalendar expression (systemd-analyze calendar rejects it)"
	mountpoint -q "$MOUNT_POINT" || die "$MOUNT_POINT is not mounted; the volume step must run first"
	install -o root -g root -m 0644 "$JOB_CONF" "$CONFIG_DIR/jobs/$JOB.conf"
	install -o root -g root -m 0644 "$KNOWN_HOSTS" "$CONFIG_DIR/known_hosts.d/$JOB"
	# The sandbox's ReadWritePaths= must exist before the service starts.
	install -d -o root -g root -m 0700 "$MOUNT_POINT/$JOB" "$STATE_DIR/$JOB"
	install -o root -g root -m 0644 "$SERVICE_UNIT" "$UNIT_DIR/backup_$JOB.service"
	install -o root -g root -m 0644 "$TIMER_UNIT" "$UNIT_DIR/backup_$JOB.timer"
	systemctl daemon-reload
	# `enable` takes seconds even when there is nothing to do.
	systemctl is-enabled --quiet "backup_$JOB.timer" 2>/dev/null || systemctl enable --quiet "backup_$JOB.timer"
	# restart, not start: a changed OnCalendar applies at once. Persistent=true
	# keeps a missed run from being lost.
	systemctl restart "backup_$JOB.timer"
	log "timer: $(systemctl show -P NextElapseUSecRealtime "backup_$JOB.timer" 2>/dev/null || echo unknown)"
	printf '{"timer":"backup_%s.timer","service":"backup_%s.service"}\n' "$JOB" "$JOB"
}

main
