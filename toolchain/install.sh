#!/usr/bin/env bash
# Installs everything pullsnap's demo and tests need on a fresh Debian 12
# machine, with no downloads beyond Debian's packages, the npm registry and the
# Go module proxy:
#   - Debian packages (QEMU, debootstrap, btrfs-progs, rsync, sshd, ...)
#   - node_modules, including Node 24 from the npm `node` package
#   - the Pulumi CLI, built from the Go module proxy
#   - our Node.js language host and command provider (toolchain/cmd/), because
#     the proxy here serves neither upstream module
# Reruns are cheap: each piece is skipped when already in place.
# Source toolchain/env.sh afterwards to put the tools on PATH.
#
# Our provider stands in for upstream's under the same name and version, so it
# goes into pullsnap's own PULUMI_HOME (under PULLSNAP_CACHE, exported by
# env.sh), never into ~/.pulumi or an inherited PULUMI_HOME: there it would
# replace an operator's upstream plugin. Nothing here writes to ~/.pulumi.
set -euo pipefail

: "${PULLSNAP_CACHE:=$HOME/.cache/pullsnap}"
# Keep in step with toolchain/env.sh.
export PULUMI_HOME=$PULLSNAP_CACHE/pulumi-home
: "${PULUMI_VERSION:=3.274.1}"
: "${COMMAND_PLUGIN_VERSION:=}" # defaults to what @pulumi/command declares

TOOLCHAIN_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$TOOLCHAIN_DIR")

say() { printf '[toolchain] %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# command -> Debian package providing it
APT_PACKAGES=(
	qemu-system-x86_64:qemu-system-x86
	qemu-img:qemu-utils
	debootstrap:debootstrap
	mkfs.btrfs:btrfs-progs
	shellcheck:shellcheck
	rsync:rsync
	sshd:openssh-server
	ssh:openssh-client
	setfacl:acl
	setfattr:attr
	setcap:libcap2-bin
	parted:parted
	jq:jq
	rsnapshot:rsnapshot
	mkfs.ext4:e2fsprogs
	flock:util-linux
	openssl:openssl
)

install_apt_packages() {
	local entry cmd missing=()
	for entry in "${APT_PACKAGES[@]}"; do
		cmd=${entry%%:*}
		# sshd lives in /usr/sbin, which a non-login PATH may lack.
		command -v "$cmd" >/dev/null 2>&1 || [[ -x /usr/sbin/$cmd ]] || missing+=("${entry#*:}")
	done
	((${#missing[@]} == 0)) && return
	say "installing Debian packages: ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_node_modules() {
	# npm ci wipes node_modules, so only run it when the lock file changed.
	local stamp=$REPO_DIR/node_modules/.pullsnap-lock-hash hash
	hash=$(sha256sum "$REPO_DIR/package-lock.json" | cut -c1-16)
	if [[ -f $stamp && $(cat "$stamp") == "$hash" ]]; then
		return
	fi
	say "installing node_modules (npm ci)"
	(cd "$REPO_DIR" && npm ci --no-audit --no-fund --loglevel=error)
	echo "$hash" >"$stamp"
	"$REPO_DIR/node_modules/.bin/node" --version >/dev/null || die "node_modules/.bin/node does not run"
}

version_at_least() { # A B: is version A >= version B?
	[[ $(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n1) == "$2" ]]
}

# Prints the directory holding a usable `pulumi`, building it if needed.
pulumi_cli_dir() {
	local existing version
	existing=$(command -v pulumi || true)
	if [[ -n $existing && $existing != "$PULLSNAP_CACHE"/* ]]; then
		version=$("$existing" version 2>/dev/null | sed 's/^v//')
		if version_at_least "$version" "$PULUMI_VERSION"; then
			dirname "$existing"
			return
		fi
		say "ignoring $existing: version $version is older than $PULUMI_VERSION"
	fi
	local dir=$PULLSNAP_CACHE/tools/pulumi-v$PULUMI_VERSION
	if [[ ! -x $dir/pulumi ]]; then
		say "building the Pulumi CLI v$PULUMI_VERSION from the Go module proxy into $dir"
		say "(first build: about 5 minutes on 2 cores; later builds reuse Go's cache)"
		mkdir -p "$dir"
		(cd "$TOOLCHAIN_DIR" && go build -trimpath \
			-ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$PULUMI_VERSION" \
			-o "$dir/pulumi.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi)
		mv "$dir/pulumi.tmp" "$dir/pulumi"
	fi
	echo "$dir"
}

# Prints the directory holding our language host and command provider, keyed
# by a hash of their sources so an edit rebuilds them.
plugins_dir() {
	local key dir
	key=$(cd "$TOOLCHAIN_DIR" && find go.mod go.sum cmd -type f ! -name '*_test.go' -print0 | sort -z | xargs -0 cat | sha256sum | cut -c1-12)
	dir=$PULLSNAP_CACHE/tools/plugins-$key
	# The provider goes in a subfolder: on PATH, the CLI would prefer it to the
	# installed plugin and warn on every run.
	if [[ ! -x $dir/provider/pulumi-resource-command ]]; then
		say "building the Node.js language host and the command provider into $dir"
		mkdir -p "$dir.tmp/provider"
		(cd "$TOOLCHAIN_DIR" && go build -trimpath -o "$dir.tmp/" ./cmd/pulumi-language-nodejs &&
			go build -trimpath -o "$dir.tmp/provider/" ./cmd/pulumi-resource-command)
		rm -rf "$dir"
		mv "$dir.tmp" "$dir"
	fi
	echo "$dir"
}

install_pulumi() {
	local cli plugins version
	cli=$(pulumi_cli_dir)
	plugins=$(plugins_dir)
	# The CLI looks for plugins next to its own binary first; a hard link (not a
	# symlink: Go resolves those) puts it beside ours. The dynamic-provider shim
	# resolves @pulumi/pulumi from the program's folder, so one copy serves every
	# checkout.
	ln -f "$cli/pulumi" "$plugins/pulumi" 2>/dev/null || cp -f "$cli/pulumi" "$plugins/pulumi"
	install -m 0755 "$REPO_DIR/node_modules/@pulumi/pulumi/pulumi-resource-pulumi-nodejs" "$plugins/"
	version=${COMMAND_PLUGIN_VERSION:-$(jq -r .pulumi.version "$REPO_DIR/node_modules/@pulumi/command/package.json")}
	# `plugin install --file` copies the binary into PULUMI_HOME; redo it when ours changed.
	local installed=$PULUMI_HOME/plugins/resource-command-v$version/pulumi-resource-command
	if ! cmp -s "$installed" "$plugins/provider/pulumi-resource-command"; then
		say "installing the command provider v$version into $PULUMI_HOME"
		PULUMI_SKIP_UPDATE_CHECK=true "$plugins/pulumi" plugin install resource command "$version" \
			--file "$plugins/provider/pulumi-resource-command" --reinstall >/dev/null 2>&1
	fi
	mkdir -p "$PULLSNAP_CACHE/tools"
	printf 'PULLSNAP_TOOLS_DIR=%q\n' "$plugins" >"$PULLSNAP_CACHE/tools/current.env"
	say "pulumi $(PULUMI_SKIP_UPDATE_CHECK=true "$plugins/pulumi" version) ready in $plugins, plugins in $PULUMI_HOME"
}

main() {
	[[ $(id -u) == 0 ]] || die "run as root: the lab and the runner tests need loop devices, QEMU and apt"
	# Debian's golang-go is too old for pulumi; machines of this kind ship Go here.
	command -v go >/dev/null || PATH=/usr/local/go/bin:$PATH
	command -v go >/dev/null || die "Go >= 1.26 is needed to build the Pulumi CLI; none on PATH or in /usr/local/go"
	install_apt_packages
	install_node_modules
	install_pulumi
}

main "$@"
