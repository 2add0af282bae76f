# shellcheck shell=bash
# Helpers shared by the check scripts (hosts/*/check-*.sh): each report line is
# `key<TAB>value`, and the whole report goes out as one JSON line.

item() { printf '%s\t%s\n' "$1" "$2"; }

digest() { # FILE
	if [[ -f $1 ]]; then sha256sum <"$1" | cut -d' ' -f1; else echo missing; fi
}

owner_mode() { # PATH
	stat -c '%U:%G %a' "$1" 2>/dev/null || echo missing
}

json_string() { # TEXT: JSON-escaped, for the few characters a report holds
	local s=$1
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	s=${s//$'\t'/\\t}
	s=${s//$'\n'/\\n}
	printf '"%s"' "$s"
}

print_report() { # TEXT
	printf '{"report":%s}\n' "$(json_string "$1")"
}
