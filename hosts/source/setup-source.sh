#!/bin/bash
# Turns a host into a pullsnap source (the seed's "main server"): the rsyncr
# user, its capability copy of rsync kept current by a package hook, and an
# authorized_keys entry that only lets the backup server's key pull.
# Idempotent. Logs go to stderr; stdout is left to the step's check report.
#
# Inputs (set by components/sourceHost.ts): BACKUP_PUBLIC_KEY, FROM, the array
# JOB_PATHS, and the files GATE, REFRESH, APT_HOOK, PACMAN_HOOK. The SSH session
# that runs this script has already verified the host's pinned key.
set -euo pipefail

: "${HOME_DIR:=/var/lib/rsync-readcap}"
: "${LIBEXEC:=/usr/local/libexec/rsync-readcap}"

log() { echo "[source $(hostname)] $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

detect_package_manager() {
	if command -v dpkg >/dev/null && [[ -d /etc/apt/apt.conf.d ]]; then
		echo apt
	elif command -v pacman >/dev/null; then
		echo pacman
	else
		die "unsupported distribution: neither apt/dpkg nor pacman found; pullsnap keeps the rsync copy current with their hooks"
	fi
}

ensure_packages() { # PM
	local need=()
	command -v rsync >/dev/null || need+=(rsync)
	command -v setcap >/dev/null || need+=("$([[ $1 == apt ]] && echo libcap2-bin || echo libcap)")
	((${#need[@]} == 0)) && return
	log "installing ${need[*]}"
	case $1 in
	apt) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2 ;;
	pacman) pacman -S --noconfirm --needed "${need[@]}" >&2 ;;
	esac
}

ensure_user() {
	if ! getent passwd rsyncr >/dev/null; then
		log "creating system user rsyncr"
		# A shell is needed to run the forced command; the locked password and
		# the forced command leave no way to an interactive one.
		useradd --system --user-group --home-dir "$HOME_DIR" --no-create-home --shell /bin/sh rsyncr
	fi
	passwd -l rsyncr >/dev/null 2>&1 || true
	# Root-owned, so rsyncr can neither replace the copy nor rename .ssh.
	install -d -o root -g root -m 0755 "$HOME_DIR"
}

install_helpers() { # PM
	install -d -o root -g root -m 0755 "$LIBEXEC"
	install -o root -g root -m 0755 "$GATE" "$LIBEXEC/rsync-gate"
	install -o root -g root -m 0755 "$REFRESH" "$LIBEXEC/refresh-rsync-copy"
	case $1 in
	apt) install -o root -g root -m 0644 "$APT_HOOK" /etc/apt/apt.conf.d/80rsync-readcap ;;
	pacman)
		install -d -m 0755 /etc/pacman.d/hooks
		install -o root -g root -m 0644 "$PACMAN_HOOK" /etc/pacman.d/hooks/rsync-readcap.hook
		;;
	esac
	"$LIBEXEC/refresh-rsync-copy"
}

authorized_keys_current() { # LINE
	local ssh_dir=$HOME_DIR/.ssh ak=$HOME_DIR/.ssh/authorized_keys
	[[ -f $ak && $(cat "$ak") == "$1" ]] &&
		[[ $(stat -c '%U %a' "$ssh_dir" "$ak" | tr '\n' ' ') == "rsyncr 700 rsyncr 600 " ]] &&
		[[ $(lsattr -d "$ssh_dir" "$ak" | cut -c5 | tr -d '\n') == ii ]]
}

write_authorized_keys() {
	local options="restrict" ssh_dir=$HOME_DIR/.ssh line
	[[ -n $FROM ]] && options+=",from=\"$FROM\""
	# The gate's arguments are the only paths the backup key may read; they are
	# plain words (checked in main), so sshd's shell passes them as they are.
	options+=",command=\"$LIBEXEC/rsync-gate ${JOB_PATHS[*]}\""
	line="$options $BACKUP_PUBLIC_KEY"
	authorized_keys_current "$line" && return
	log "writing $ssh_dir/authorized_keys"
	# sshd reads authorized_keys as rsyncr and StrictModes wants it owned by
	# rsyncr or root; rsyncr owns it (0700/0600) and the immutable flag keeps
	# rsyncr from editing, replacing or adding key files.
	if [[ -d $ssh_dir ]]; then
		chattr -R -i "$ssh_dir"
		rm -rf "$ssh_dir"
	fi
	install -d -o rsyncr -g rsyncr -m 0700 "$ssh_dir"
	printf '%s\n' "$line" >"$ssh_dir/authorized_keys"
	chown rsyncr:rsyncr "$ssh_dir/authorized_keys"
	chmod 0600 "$ssh_dir/authorized_keys"
	chattr +i "$ssh_dir/authorized_keys" "$ssh_dir" ||
		die "cannot set the immutable flag on $ssh_dir (filesystem without chattr support?)"
}

main() {
	[[ $BACKUP_PUBLIC_KEY =~ ^ssh-ed25519\ [A-Za-z0-9+/=]+( .*)?$ ]] || die "BACKUP_PUBLIC_KEY is not an ed25519 public key"
	local p
	((${#JOB_PATHS[@]} > 0)) || die "JOB_PATHS is empty: the forced command needs the job's paths"
	for p in "${JOB_PATHS[@]}"; do
		[[ $p =~ ^/([A-Za-z0-9_,=+@-][A-Za-z0-9._,=+@-]*(/[A-Za-z0-9_,=+@-][A-Za-z0-9._,=+@-]*)*)?$ ]] ||
			die "job path $p is not a plain absolute path"
	done
	local pm
	pm=$(detect_package_manager)
	ensure_packages "$pm"
	ensure_user
	install_helpers "$pm"
	# The gate confines each pull to its path with --confine-root. (Captured
	# first: grep -q would stop reading, and pipefail would see rsync's SIGPIPE.)
	local help
	help=$("$HOME_DIR/rsync" --help)
	[[ $help == *--confine-root=* ]] ||
		die "${help%%$'\n'*} has no --confine-root; pullsnap needs rsync 3.5.0 or later on the source (Debian 12: bookworm-security)"
	write_authorized_keys
	log "ready: $(getcap "$HOME_DIR/rsync"); the backup key reads ${JOB_PATHS[*]}"
}

main
