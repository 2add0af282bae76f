#!/bin/bash
# Reports the state of everything setup-source.sh manages, one `key<TAB>value`
# line per item, as one JSON line {"report": "..."} on stdout. It runs at the
# end of provisioning (its report is what the host should look like) and on
# every `pulumi preview` (HostCheck compares the two). Read-only.
set -euo pipefail

: "${HOME_DIR:=/var/lib/rsync-readcap}"
: "${LIBEXEC:=/usr/local/libexec/rsync-readcap}"
: "${SYSTEM_RSYNC:=/usr/bin/rsync}"
: "${APT_HOOK_PATH:=/etc/apt/apt.conf.d/80rsync-readcap}"
: "${PACMAN_HOOK_PATH:=/etc/pacman.d/hooks/rsync-readcap.hook}"

# shellcheck source=hosts/lib/check.sh
source "${CHECK_LIB:-${BASH_SOURCE[0]%/*}/../lib/check.sh}"

die() {
	echo "check-source: $*" >&2
	exit 1
}

immutable() { # PATH: lsattr's fifth flag column is "i"
	local flags
	flags=$(lsattr -d "$1" 2>/dev/null) || {
		echo missing
		return
	}
	if [[ ${flags:4:1} == i ]]; then echo immutable; else echo mutable; fi
}

report() {
	local copy=$HOME_DIR/rsync ak=$HOME_DIR/.ssh/authorized_keys caps
	item gate "$(digest "$LIBEXEC/rsync-gate") $(owner_mode "$LIBEXEC/rsync-gate")"
	item refresh_script "$(digest "$LIBEXEC/refresh-rsync-copy") $(owner_mode "$LIBEXEC/refresh-rsync-copy")"
	if command -v dpkg >/dev/null && [[ -d ${APT_HOOK_PATH%/*} ]]; then
		item package_hook "$(digest "$APT_HOOK_PATH")"
	else
		item package_hook "$(digest "$PACMAN_HOOK_PATH")"
	fi
	item rsyncr_account "$(getent passwd rsyncr | cut -d: -f6,7 || echo missing) $(passwd -S rsyncr 2>/dev/null | cut -d' ' -f2 || echo missing)"
	item copy_dir "$(owner_mode "$HOME_DIR")"
	item copy_mode "$(owner_mode "$copy")"
	caps=$(getcap "$copy" 2>/dev/null | cut -d' ' -f2-)
	item copy_caps "${caps:-none}"
	if cmp -s "$SYSTEM_RSYNC" "$copy"; then item copy_content same-as-system-rsync; else item copy_content differs; fi
	item authorized_keys "$(digest "$ak") $(owner_mode "$ak") $(immutable "$ak")"
	item ssh_dir "$(owner_mode "$HOME_DIR/.ssh") $(immutable "$HOME_DIR/.ssh")"
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
