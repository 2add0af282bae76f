#!/bin/bash
# Undoes setup-source.sh on `pulumi destroy`: the rsyncr user, its capability
# copy, its keys, the helpers and the package hooks. Touches no other data.
set -euo pipefail

: "${HOME_DIR:=/var/lib/rsync-readcap}"
: "${LIBEXEC:=/usr/local/libexec/rsync-readcap}"

echo "[source $(hostname)] removing rsyncr and its capability copy of rsync" >&2
chattr -i "$HOME_DIR/.ssh" "$HOME_DIR/.ssh/authorized_keys" 2>/dev/null || true
rm -f /etc/apt/apt.conf.d/80rsync-readcap /etc/pacman.d/hooks/rsync-readcap.hook
rm -rf "$LIBEXEC" "$HOME_DIR"
if getent passwd rsyncr >/dev/null; then
	pkill -KILL -u rsyncr 2>/dev/null || true
	userdel rsyncr
fi
getent group rsyncr >/dev/null && groupdel rsyncr
exit 0
