#!/bin/bash
# Undoes install-maintenance.sh on `pulumi destroy`: the timers, the server
# config and pullsnap's smartd.conf (the distribution's is put back).
set -euo pipefail

: "${CONFIG_DIR:=/etc/pullsnap}"
: "${UNIT_DIR:=/etc/systemd/system}"
: "${LIB_DIR:=/usr/local/lib/pullsnap}"
: "${SMARTD_CONF_PATH:=/etc/smartd.conf}"

echo "[maintenance $(hostname)] removing the scrub and watch timers, smartd's alert hook and $CONFIG_DIR/pullsnap.conf" >&2
systemctl disable --now --quiet pullsnap-scrub.timer pullsnap-watch.timer 2>/dev/null || true
rm -f "$UNIT_DIR"/pullsnap-{scrub,watch}.{service,timer} "$CONFIG_DIR/pullsnap.conf" "$LIB_DIR/smartd-alert" \
	"$UNIT_DIR"/{smartmontools,smartd}.service.d/pullsnap.conf
rmdir "$LIB_DIR" 2>/dev/null || true
if [[ -e $SMARTD_CONF_PATH.pullsnap-orig ]]; then
	mv -f "$SMARTD_CONF_PATH.pullsnap-orig" "$SMARTD_CONF_PATH"
	systemctl try-restart smartmontools.service smartd.service 2>/dev/null || true
fi
systemctl daemon-reload
