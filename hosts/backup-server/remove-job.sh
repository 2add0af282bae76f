#!/bin/bash
# Undoes install-job.sh on `pulumi destroy`: the timer, the service, the job's
# config and pinned host key. The job's snapshots on the volume stay.
set -euo pipefail

: "${CONFIG_DIR:=/etc/pullsnap}"
: "${UNIT_DIR:=/etc/systemd/system}"

echo "[job $JOB] removing backup_$JOB.timer and .service; its snapshots stay on the volume" >&2
systemctl disable --now --quiet "backup_$JOB.timer" 2>/dev/null || true
systemctl stop "backup_$JOB.service" 2>/dev/null || true
rm -f "$UNIT_DIR/backup_$JOB.service" "$UNIT_DIR/backup_$JOB.timer" \
	"$CONFIG_DIR/jobs/$JOB.conf" "$CONFIG_DIR/known_hosts.d/$JOB"
systemctl daemon-reload
