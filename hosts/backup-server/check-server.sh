#!/bin/bash
# Reports the state of what the backup server's provisioning steps manage, one
# `key<TAB>value` line per item, as one JSON line {"report": "..."} on stdout.
# Each step runs it for its own part (runner, volume, one job) right after
# provisioning, and HostCheck runs it for all parts on every `pulumi preview`
# and compares. Read-only.
#
# Inputs: CHECK_RUNNER (1 or empty), MOUNT_POINT (empty: skip the volume),
# CHECK_MAINTENANCE (1 or empty), JOBS (array of job names).
set -euo pipefail

: "${CONFIG_DIR:=/etc/pullsnap}"
: "${RUNNER_PATH:=/usr/local/sbin/pullsnap}"
: "${UNIT_DIR:=/etc/systemd/system}"
: "${FSTAB:=/etc/fstab}"
: "${CHECK_RUNNER:=}"
: "${MOUNT_POINT:=}"
: "${CHECK_MAINTENANCE:=}"
: "${SMARTD_CONF_PATH:=/etc/smartd.conf}"
[[ -v JOBS ]] || JOBS=()

# shellcheck source=hosts/lib/check.sh
source "${CHECK_LIB:-${BASH_SOURCE[0]%/*}/../lib/check.sh}"

die() {
	echo "check-server: $*" >&2
	exit 1
}

runner_report() {
	item runner "$(digest "$RUNNER_PATH") $(owner_mode "$RUNNER_PATH")"
	item config_dir "$(owner_mode "$CONFIG_DIR") $(owner_mode "$CONFIG_DIR/jobs") $(owner_mode "$CONFIG_DIR/known_hosts.d")"
	# The key itself stays on the host; its presence and mode are what matter here.
	item backup_key "$(owner_mode "$CONFIG_DIR/id_ed25519")"
}

volume_report() {
	local line mounted=not-mounted fstype options uuid flags="" flag
	line=$(awk -v mp="$MOUNT_POINT" '$2 == mp' "$FSTAB" 2>/dev/null)
	item fstab "${line:-missing}"
	if read -r fstype options uuid < <(findmnt -nro FSTYPE,OPTIONS,UUID --mountpoint "$MOUNT_POINT" 2>/dev/null); then
		# Only the options pullsnap sets: the kernel adds others (subvolid, space_cache).
		for flag in nosuid nodev noexec; do
			[[ ,$options, == *,$flag,* ]] && flags+=",$flag"
		done
		mounted="$fstype UUID=$uuid ${flags#,}"
	fi
	item mount "$mounted"
}

maintenance_report() {
	item server_config "$(digest "$CONFIG_DIR/pullsnap.conf") $(owner_mode "$CONFIG_DIR/pullsnap.conf")"
	item smartd_config "$(digest "$SMARTD_CONF_PATH")"
	local unit timer units=""
	for unit in pullsnap-scrub.service pullsnap-scrub.timer pullsnap-watch.service pullsnap-watch.timer; do
		units+=" $(digest "$UNIT_DIR/$unit")"
	done
	item maintenance_units "${units# }"
	for timer in scrub watch; do
		item "${timer}_timer" "$(systemctl is-enabled "pullsnap-$timer.timer" 2>/dev/null || true) $(systemctl is-active "pullsnap-$timer.timer" 2>/dev/null || true)"
	done
}

job_report() { # JOB
	local job=$1
	item "job_${job}_config" "$(digest "$CONFIG_DIR/jobs/$job.conf")"
	item "job_${job}_known_hosts" "$(digest "$CONFIG_DIR/known_hosts.d/$job")"
	item "job_${job}_units" "$(digest "$UNIT_DIR/backup_$job.service") $(digest "$UNIT_DIR/backup_$job.timer")"
	item "job_${job}_timer" "$(systemctl is-enabled "backup_$job.timer" 2>/dev/null || true) $(systemctl is-active "backup_$job.timer" 2>/dev/null || true)"
}

report() {
	local job
	[[ -z $CHECK_RUNNER ]] || runner_report
	[[ -z $MOUNT_POINT ]] || volume_report
	[[ -z $CHECK_MAINTENANCE ]] || maintenance_report
	for job in "${JOBS[@]}"; do
		[[ $job =~ ^[a-z0-9][a-z0-9-]*$ ]] || die "bad job name \"$job\""
		job_report "$job"
	done
}

main() {
	local text
	text=$(report) || die "could not read the host's state"
	print_report "$text"
}

# Guarded so tests can source it; under `bash -c` BASH_SOURCE is empty.
if [[ ${BASH_SOURCE[0]-$0} == "$0" ]]; then
	main
fi
