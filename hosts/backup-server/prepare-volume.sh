#!/bin/bash
# Builds or adopts the Btrfs backup volume, as the seed lays it out: one GPT
# partition 1MiB-100% per drive, `mkfs.btrfs -L LABEL --nodesize 32k`, data and
# metadata profiles from config, mounted through fstab nosuid,nodev,noexec.
#
# Never loses data. Every drive is classified before anything is written:
#   blank      no partition table, no filesystem (blkid -p finds nothing)
#   prepared   our single empty GPT partition (a run interrupted after parted)
#   member     a partition of this very volume: adopted, never reformatted
#   foreign    anything else: refused, unless listed in WIPE_DRIVES
# A mounted drive is never written. Drives new to an existing volume are added
# with `btrfs device add` and a background balance (the seed's "Add physical
# space"). A drive of the volume that is no longer configured is refused
# unless REMOVE_DRIVES lists it; then `btrfs device remove` moves its data to
# the other drives first, if they have the room. Idempotent. Logs to stderr;
# stdout carries one JSON line for Pulumi.
#
# Inputs (set by components/btrfsVolume.ts): LABEL, MOUNT_POINT, DATA_PROFILE,
# METADATA_PROFILE, DRIVES (array), WIPE_DRIVES (array), REMOVE_DRIVES (array).
set -euo pipefail

: "${MOUNT_OPTIONS:=nosuid,nodev,noexec,noatime}"
: "${FSTAB:=/etc/fstab}"
: "${PROGRESS_INTERVAL:=15}"
[[ -v REMOVE_DRIVES ]] || REMOVE_DRIVES=()

log() { echo "[volume $(hostname)] $*" >&2; }
die() {
	log "error: $*"
	exit 1
}

partition_of() { # DRIVE -> its first partition's device name
	if [[ $1 =~ [0-9]$ ]]; then echo "${1}p1"; else echo "${1}1"; fi
}

# The UUID of the volume this host already has for LABEL at MOUNT_POINT, if any.
existing_uuid() {
	local uuid
	uuid=$(findmnt -nro UUID --mountpoint "$MOUNT_POINT" 2>/dev/null || true)
	[[ -z $uuid ]] && uuid=$(awk -v mp="$MOUNT_POINT" '$2 == mp && $1 ~ /^UUID=/ { sub(/^UUID=/, "", $1); print $1 }' "$FSTAB")
	echo "$uuid"
}

describe() { # DEVICE -> what blkid and lsblk see on it, for error messages
	local what
	what=$(blkid -p -o export "$1" 2>/dev/null | grep -E '^(TYPE|PTTYPE|LABEL)=' | tr '\n' ' ' || true)
	[[ -n $what ]] || what="partitions: $(lsblk -nro NAME,FSTYPE "$1" | tail -n +2 | tr '\n' ' ')"
	echo "${what% }"
}

is_mounted() { # DEVICE: it or one of its partitions is mounted or used as swap
	lsblk -nro MOUNTPOINTS "$1" 2>/dev/null | grep -q . ||
		lsblk -nro MOUNTPOINT "$1" 2>/dev/null | grep -q .
}

classify() { # DRIVE UUID -> blank|prepared|member|foreign
	local drive=$1 uuid=$2 part parts
	part=$(partition_of "$drive")
	parts=$(lsblk -nro NAME "$drive" | tail -n +2 | wc -l)
	if ((parts == 0)); then
		# blkid -p exits 2 when it finds nothing at all on the device.
		if blkid -p "$drive" >/dev/null 2>&1; then echo foreign; else echo blank; fi
		return
	fi
	if ((parts == 1)) && [[ -b $part ]]; then
		local type part_uuid
		type=$(blkid -p -s TYPE -o value "$part" 2>/dev/null || true)
		part_uuid=$(blkid -p -s UUID -o value "$part" 2>/dev/null || true)
		if [[ $type == btrfs && -n $uuid && $part_uuid == "$uuid" ]]; then
			echo member
			return
		fi
		if [[ $type == btrfs && -z $uuid && $(blkid -p -s LABEL -o value "$part") == "$LABEL" ]]; then
			# A volume with our label that this host has not mounted yet
			# (fresh OS install, fstab lost): adopt it, never reformat.
			echo member
			return
		fi
		if ! blkid -p "$part" >/dev/null 2>&1 && [[ $(blkid -p -s PTTYPE -o value "$drive") == gpt ]]; then
			echo prepared
			return
		fi
	fi
	echo foreign
}

partition() { # DRIVE
	log "partitioning $1: GPT, one partition 1MiB-100%"
	parted -s "$1" mklabel gpt mkpart primary 1MiB 100%
	udevadm settle 2>/dev/null || true
	local part i
	part=$(partition_of "$1")
	for ((i = 0; i < 50; i++)); do
		[[ -b $part ]] && return
		sleep 0.1
	done
	die "$part did not appear after partitioning $1"
}

write_fstab() { # UUID
	local line="UUID=$1 $MOUNT_POINT btrfs $MOUNT_OPTIONS 0 0"
	grep -qxF "$line" "$FSTAB" && return
	log "fstab: $line"
	# Replace whatever mounted MOUNT_POINT before; temp file + mv keeps fstab whole.
	awk -v mp="$MOUNT_POINT" '$2 != mp' "$FSTAB" >"$FSTAB.pullsnap.new"
	echo "$line" >>"$FSTAB.pullsnap.new"
	chmod 0644 "$FSTAB.pullsnap.new"
	mv -f "$FSTAB.pullsnap.new" "$FSTAB"
	# systemd turns fstab into mount units; tell it fstab changed.
	[[ $FSTAB != /etc/fstab ]] || systemctl daemon-reload
}

ensure_mounted() { # UUID
	mkdir -p "$MOUNT_POINT"
	if findmnt -n --mountpoint "$MOUNT_POINT" >/dev/null; then
		# remount applies options that changed in fstab (nosuid,nodev,...).
		mount -o "remount,$MOUNT_OPTIONS" "$MOUNT_POINT"
	else
		log "mounting $MOUNT_POINT"
		if ! mount --fstab "$FSTAB" "$MOUNT_POINT"; then
			if btrfs filesystem show "$1" 2>/dev/null | grep -q 'devices missing'; then
				die "volume $1 cannot be mounted: a drive is missing (failed or unplugged). With data profile $DATA_PROFILE the volume's data is lost; nothing was changed. See README, \"Replace a failed drive\""
			fi
			die "mounting volume $1 at $MOUNT_POINT failed (see above); nothing was changed"
		fi
	fi
	[[ $(findmnt -nro UUID --mountpoint "$MOUNT_POINT") == "$1" ]] ||
		die "$MOUNT_POINT is mounted, but not from volume $1"
}

# The volume's devices, one "PATH<TAB>ALLOCATED<TAB>UNALLOCATED" line each, in bytes.
device_usage() {
	btrfs device usage -b "$MOUNT_POINT" | awk '
		/^\/dev\// { path = $1; sub(/,$/, "", path) }
		/Device size:/ { size[path] = $NF }
		/Unallocated:/ { free[path] = $NF }
		END { for (p in size) printf "%s\t%s\t%s\n", p, size[p] - free[p], free[p] }'
}

gib() { awk -v b="$1" 'BEGIN { printf "%.2f GiB", b / 1073741824 }'; }

# remove_devices PARTITION...: `btrfs device remove`, after checking that the
# remaining devices' unallocated space holds everything allocated on these.
remove_devices() {
	local need=0 have=0 path allocated free
	while IFS=$'\t' read -r path allocated free; do
		if [[ " $* " == *" $path "* ]]; then
			need=$((need + allocated))
		else
			have=$((have + free))
		fi
	done < <(device_usage)
	if ((need > have)); then
		die "cannot remove $*: $(gib "$need") is allocated there, but the other drives have only $(gib "$have") unallocated. Delete snapshots or add a drive first; nothing was changed"
	fi
	if btrfs balance status "$MOUNT_POINT" 2>/dev/null | grep -q 'running'; then
		die "a balance is running on $MOUNT_POINT (btrfs balance status); let it finish or cancel it, then run again; nothing was changed"
	fi
	log "removing $* from $MOUNT_POINT: moving $(gib "$need") to the other drives ($(gib "$have") unallocated there)"
	btrfs device remove "$@" "$MOUNT_POINT" >&2 &
	local pid=$!
	# Removal can take hours on big drives: say how much is left now and then.
	while ! wait_briefly "$pid"; do
		while IFS=$'\t' read -r path allocated free; do
			[[ " $* " == *" $path "* ]] && log "removing $path: $(gib "$allocated") still on it"
		done < <(device_usage)
	done
	wait "$pid" || die "btrfs device remove $* failed (see above); the volume keeps the drive"
	log "removed $*"
}

wait_briefly() { # PID: true once it has exited
	local i
	for ((i = 0; i < PROGRESS_INTERVAL * 10; i++)); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# The volume's devices that DRIVES no longer lists: removed when REMOVE_DRIVES
# says so, refused otherwise.
remove_unlisted_devices() {
	local path drive wanted=" " removable=() problems=()
	for drive in "${DRIVES[@]}"; do wanted+="$(partition_of "$drive") "; done
	while IFS=$'\t' read -r path _ _; do
		[[ $wanted == *" $path "* ]] && continue
		drive=/dev/$(lsblk -nro PKNAME "$path" 2>/dev/null | head -n1)
		if [[ " ${REMOVE_DRIVES[*]} " == *" $drive "* ]]; then
			removable+=("$path")
		else
			problems+=("$path (drive $drive) is part of the volume but not in backupServer.drives. To take it out, list $drive in backupServer.removeDrives: its data then moves to the other drives. To keep it, add it back to drives")
		fi
	done < <(device_usage)
	if ((${#problems[@]} > 0)); then
		printf '[volume %s] error: %s\n' "$(hostname)" "${problems[@]}" >&2
		die "the volume has drives the config does not list; nothing was removed"
	fi
	((${#removable[@]} == 0)) || remove_devices "${removable[@]}"
}

main() {
	((${#DRIVES[@]} > 0)) || die "no drives configured"
	btrfs device scan >/dev/null 2>&1 || true
	local uuid drive kind problems=() members=() fresh=()
	uuid=$(existing_uuid)
	declare -A kinds
	for drive in "${DRIVES[@]}"; do
		[[ -b $drive ]] || {
			problems+=("$drive: not a block device on this host")
			continue
		}
		kind=$(classify "$drive" "$uuid")
		if [[ $kind == foreign ]]; then
			if is_mounted "$drive"; then
				problems+=("$drive: in use (mounted or swap: $(lsblk -nro NAME,MOUNTPOINT "$drive" | tr '\n' ' ')); never formatted")
				continue
			fi
			if [[ " ${WIPE_DRIVES[*]} " != *" $drive "* ]]; then
				problems+=("$drive: holds data ($(describe "$drive")); refusing to format it. List it in backupServer.wipeDrives to allow wiping")
				continue
			fi
			kind=wipe
		fi
		kinds[$drive]=$kind
		log "$drive: $kind"
	done
	if ((${#problems[@]} > 0)); then
		printf '[volume %s] error: %s\n' "$(hostname)" "${problems[@]}" >&2
		die "${#problems[@]} drive problem(s); nothing was changed"
	fi

	for drive in "${DRIVES[@]}"; do
		case ${kinds[$drive]} in
		member) members+=("$(partition_of "$drive")") ;;
		wipe)
			log "wiping $drive as configured in wipeDrives: $(describe "$drive")"
			wipefs -a "$drive" >&2
			partition "$drive"
			fresh+=("$(partition_of "$drive")")
			;;
		blank)
			partition "$drive"
			fresh+=("$(partition_of "$drive")")
			;;
		prepared) fresh+=("$(partition_of "$drive")") ;;
		esac
	done

	local member
	for member in "${members[@]}"; do
		[[ $(blkid -p -s UUID -o value "$member") == "$(blkid -p -s UUID -o value "${members[0]}")" ]] ||
			die "${members[0]} and $member carry different Btrfs volumes labelled $LABEL; list the drives of one volume only"
	done
	if ((${#members[@]} == 0)); then
		log "creating Btrfs volume $LABEL on ${fresh[*]} (data $DATA_PROFILE, metadata $METADATA_PROFILE)"
		mkfs.btrfs -q -L "$LABEL" --nodesize 32k --data "$DATA_PROFILE" --metadata "$METADATA_PROFILE" "${fresh[@]}" >&2
		udevadm settle 2>/dev/null || true
		btrfs device scan >/dev/null 2>&1 || true
		uuid=$(blkid -p -s UUID -o value "${fresh[0]}")
		fresh=()
	else
		uuid=$(blkid -p -s UUID -o value "${members[0]}")
	fi
	write_fstab "$uuid"
	ensure_mounted "$uuid"
	if ((${#fresh[@]} > 0)); then
		log "adding ${fresh[*]} to $MOUNT_POINT"
		btrfs device add -f "${fresh[@]}" "$MOUNT_POINT" >&2
	fi
	# Removing before balancing: removal spreads the data anyway, and a running
	# balance would block it.
	remove_unlisted_devices
	if ((${#fresh[@]} > 0)); then
		log "balancing $MOUNT_POINT in the background (btrfs balance status $MOUNT_POINT shows progress)"
		btrfs balance start --bg --full-balance "$MOUNT_POINT" >&2
	fi
	local devices
	devices=$(btrfs filesystem show --raw "$MOUNT_POINT" | awk '/ path /{ printf "%s\"%s\"", sep, $NF; sep="," }')
	printf '{"uuid":"%s","devices":[%s]}\n' "$uuid" "$devices"
}

main
