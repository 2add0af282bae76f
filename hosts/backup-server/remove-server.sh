#!/bin/bash
# Undoes prepare-server.sh on `pulumi destroy`: the runner and the backup
# key. The volume, its snapshots and the runner's state stay.
set -euo pipefail
: "${CONFIG_DIR:=/etc/pullsnap}"
: "${RUNNER_PATH:=/usr/local/sbin/pullsnap}"
echo "[backup $(hostname)] removing the runner and the backup key; the volume and its snapshots stay" >&2
rm -f "$RUNNER_PATH" "$CONFIG_DIR/id_ed25519" "$CONFIG_DIR/id_ed25519.pub"
rmdir "$CONFIG_DIR/jobs" "$CONFIG_DIR/known_hosts.d" "$CONFIG_DIR" 2>/dev/null || true
