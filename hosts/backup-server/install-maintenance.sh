#!/bin/bash
# Installs the seed's maintenance on the backup server: the server config the
# runner reads (volume, drives, metrics, the alert channel), smartd watching
# every SMART-capable drive and alerting through `pullsnap smartd-hook`, and
# two timers: a monthly `pullsnap scrub` and an hourly `pullsnap watch` that
# alerts on stale backups. Idempotent. Logs to stderr; stdout carries one JSON
# line for Pulumi.
#
# Inputs (set by components/maintenance.ts): METRICS_DIR (or empty), DRIVES
# (array: the volume's drives), and the files SERVER_CONF, SMARTD_CONF, SMARTD_ALERT, SCRUB_SERVICE, SCRUB_TIMER,
# WATCH_SERVICE, WATCH_TIMER.
set -euo pipefail

: "${CONFIG_DIR:=/etc/pullsnap}"
: "${UNIT_DIR:=/etc/systemd/system}"
: "${LIB_DIR:=/usr/local/lib/pullsnap}"
: "${SMARTD_CONF_PATH:=/etc/smartd.conf}"

log() { echo "[maintenance $(hostname)] $*" >&2; }

# put SOURCE DEST MODE: installs SOURCE as root's DEST unless DEST is that
# already; true when it wrote. systemd reloads and `enable` take seconds each,
# so an unchanged host is not made to pay for them again.
put() {
	if cmp -s "$1" "$2" && [[ $(stat -c '%U:%G %a' "$2") == "root:root $3" ]]; then
		return 1
	fi
	install -o root -g root -m "$3" "$1" "$2"
}

enable_unit() { # UNIT
	systemctl is-enabled --quiet "$1" 2>/dev/null || systemctl enable --quiet "$1"
}

# Debian's smartmontools.service skips virtual machines (ConditionVirtualization=no).
# A backup server in a VM with passed-through drives still wants them watched,
# so the condition is lifted when one of the volume's drives reports SMART.
# True when the drop-in changed.
has_smart() { # DRIVE
	local out _
	# udev's ata_id read an ATA drive's IDENTIFY data when the drive appeared:
	# no command goes to a drive busy with a fresh `device add` and its balance.
	out=$(udevadm info --query=property --name="$1" 2>/dev/null || true)
	if grep -qx 'ID_ATA_FEATURE_SET_SMART=1' <<<"$out"; then
		log "$1: SMART (udev)"
		return 0
	fi
	# Other drives (SCSI, SAS, NVMe): smartctl, which may need a moment. Its output
	# is read whole first, so that grep -q never cuts it short under pipefail.
	for _ in 1 2 3; do
		out=$(timeout 20 smartctl -i "$1" 2>&1 || true)
		if grep -q '^SMART support is: *Available' <<<"$out"; then
			log "$1: SMART (smartctl)"
			return 0
		fi
		grep -q 'Unable to detect device type' <<<"$out" && break
		sleep 3
	done
	log "$1: no SMART"
	return 1
}

virtualization_dropin() {
	local dir=$UNIT_DIR/$1.service.d drive
	for drive in "${DRIVES[@]}"; do
		if has_smart "$drive"; then
			[[ -f $dir/pullsnap.conf ]] && return 1
			log "$drive has SMART: smartd runs here even if this is a virtual machine"
			install -d -m 0755 "$dir"
			printf '%s\n' "# Written by pullsnap: $drive reports SMART, so watch it even in a VM." \
				"[Unit]" "ConditionVirtualization=" >"$dir/pullsnap.conf"
			return 0
		fi
	done
	[[ -f $dir/pullsnap.conf ]] || return 1
	rm -f "$dir/pullsnap.conf"
	rmdir "$dir" 2>/dev/null || true
}

install_smartd() {
	local changed=0 unit
	install -d -o root -g root -m 0755 "$LIB_DIR"
	put "$SMARTD_ALERT" "$LIB_DIR/smartd-alert" 0755 || true
	# Keep the distribution's file once, so `pulumi destroy` can put it back.
	[[ -e $SMARTD_CONF_PATH.pullsnap-orig || ! -e $SMARTD_CONF_PATH ]] || cp -p "$SMARTD_CONF_PATH" "$SMARTD_CONF_PATH.pullsnap-orig"
	put "$SMARTD_CONF" "$SMARTD_CONF_PATH" 0644 && changed=1
	for unit in smartmontools smartd; do
		systemctl cat "$unit.service" >/dev/null 2>&1 || continue
		if virtualization_dropin "$unit"; then
			changed=1
			systemctl daemon-reload
		fi
		enable_unit "$unit.service" 2>/dev/null || true
		((changed)) || ! systemctl is-active --quiet "$unit.service" || return 0
		# smartd exits when no drive has SMART (virtual disks): worth a warning,
		# not a failed deployment.
		systemctl restart "$unit.service" || log "warning: smartd did not start (no SMART-capable drive?); journalctl -u $unit shows why"
		return
	done
	log "warning: no smartd service found; install smartmontools for failing-drive alerts"
}

install_timers() {
	local changed=0 timer
	put "$SCRUB_SERVICE" "$UNIT_DIR/pullsnap-scrub.service" 0644 && changed=1
	put "$SCRUB_TIMER" "$UNIT_DIR/pullsnap-scrub.timer" 0644 && changed=1
	put "$WATCH_SERVICE" "$UNIT_DIR/pullsnap-watch.service" 0644 && changed=1
	put "$WATCH_TIMER" "$UNIT_DIR/pullsnap-watch.timer" 0644 && changed=1
	((changed == 0)) || systemctl daemon-reload
	for timer in pullsnap-scrub.timer pullsnap-watch.timer; do
		enable_unit "$timer"
		# A changed OnCalendar applies at once.
		((changed == 0)) && systemctl is-active --quiet "$timer" && continue
		systemctl restart "$timer"
		log "$timer: next $(systemctl show -P NextElapseUSecRealtime "$timer" 2>/dev/null || echo unknown)"
	done
}

main() {
	# 0600: it holds the alert channel's URL and token.
	install -o root -g root -m 0600 "$SERVER_CONF" "$CONFIG_DIR/pullsnap.conf"
	[[ -z $METRICS_DIR ]] || install -d -m 0755 "$METRICS_DIR"
	install_smartd
	install_timers
	printf '{"timers":["pullsnap-scrub.timer","pullsnap-watch.timer"]}\n'
}

main
