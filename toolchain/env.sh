# shellcheck shell=bash
# Puts pullsnap's toolchain on PATH. Source it after toolchain/install.sh.
: "${PULLSNAP_CACHE:=$HOME/.cache/pullsnap}"
# shellcheck source=/dev/null
source "$PULLSNAP_CACHE/tools/current.env"
_pullsnap_repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export PATH="$_pullsnap_repo/node_modules/.bin:$PULLSNAP_TOOLS_DIR:/usr/local/go/bin:/usr/sbin:$PATH"
# pullsnap's own Pulumi home, where toolchain/install.sh put our command
# provider; the operator's ~/.pulumi (and its upstream plugins, logins and
# workspaces) is left alone.
export PULUMI_HOME=$PULLSNAP_CACHE/pulumi-home
# Nothing may be fetched at run time: plugins come from toolchain/install.sh.
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
export PULUMI_SKIP_UPDATE_CHECK=true
unset _pullsnap_repo
