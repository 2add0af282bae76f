#!/bin/bash
# Prepares the backup server: the packages the runner needs, the runner
# itself and root's backup key. The private key is generated here and never
# leaves this host; only the public key goes back to Pulumi.
# Idempotent. Logs go to stderr; stdout carries one JSON line for Pulumi.
#
# Inputs (set by components/backupServer.ts): the file RUNNER.
set -euo pipefail

: "${CONFIG_DIR:=/etc/pullsnap}"
: "${RUNNER_PATH:=/usr/local/sbin/pullsnap}"
PACKAGES=(btrfs-progs rsync parted openssh-client util-linux smartmontools curl)
# The runner also confines rsync with unshare, setpriv and findmnt (util-linux),
# reads SMART health with smartctl and sends alerts with curl.
COMMANDS=(btrfs rsync parted ssh flock unshare setpriv findmnt smartctl smartd curl)

log() { echo "[backup $(hostname)] $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

ensure_packages() {
	local cmd missing=0
	for cmd in "${COMMANDS[@]}"; do
		command -v "$cmd" >/dev/null || missing=1
	done
	((missing == 0)) && return
	command -v apt-get >/dev/null || die "missing one of ${COMMANDS[*]} and no apt-get to install ${PACKAGES[*]}"
	log "installing ${PACKAGES[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${PACKAGES[@]}" >&2 ||
		die "apt-get install ${PACKAGES[*]} failed (no package mirror reachable?)"
}

main() {
	ensure_packages
	install -d -o root -g root -m 0755 "$CONFIG_DIR" "$CONFIG_DIR/jobs" "$CONFIG_DIR/known_hosts.d"
	install -o root -g root -m 0755 "$RUNNER" "$RUNNER_PATH.new"
	mv -f "$RUNNER_PATH.new" "$RUNNER_PATH"
	if [[ ! -f $CONFIG_DIR/id_ed25519 ]]; then
		log "generating the backup key $CONFIG_DIR/id_ed25519"
		ssh-keygen -q -t ed25519 -N '' -C "pullsnap@$(hostname)" -f "$CONFIG_DIR/id_ed25519"
	fi
	chmod 0600 "$CONFIG_DIR/id_ed25519"
	printf '{"publicKey":"%s"}\n' "$(cut -d' ' -f1,2 "$CONFIG_DIR/id_ed25519.pub")"
}

main
