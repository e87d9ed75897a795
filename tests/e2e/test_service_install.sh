#!/usr/bin/env bash
# shellcheck source-path=SCRIPTDIR
# scripts/install and scripts/uninstall, into a temporary --prefix and then (as root) into the real
# system: every file is in place, the man pages render, the completions parse, the default
# configuration checks OK, the systemd unit passes systemd-analyze verify (with no warning), an
# install over a changed configuration keeps it, and uninstall removes exactly what install put.
# The real install then serves a session with no configuration at all: moshd started as installed
# (its default file), and `mosh-mux root@server` finding mosh-client-mux beside it and
# mosh-server-mux on the server's PATH, through a firewall that admits only UDP 60001.
. "$(dirname "$0")/lib.sh"

repo=${REPO:-$(cd "$E2E_DIR/../.." && pwd)}
from=${MOSH_MUX_BIN:-$repo/target/release}
programs=(moshd mosh-server-mux mosh-client-mux mosh-mux)
pages=(man8/moshd.8 man8/moshd-status.8 man8/moshd-check-config.8 man1/mosh-server-mux.1
	man1/mosh-client-mux.1 man1/mosh-mux.1)

e2e_step "tools: systemd-analyze and man"
if ! command -v systemd-analyze >/dev/null || ! command -v man >/dev/null; then
	[[ $(id -u) == 0 ]] || e2e_fail "systemd-analyze or man is missing (apt-get install systemd man-db)"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd man-db >/dev/null
fi
for p in "${programs[@]}" mosh-mux-docs; do
	[[ -x $from/$p ]] || e2e_fail "missing $from/$p (cargo build --release)"
done

# service_check PREFIX SYSCONFDIR UNITDIR : what install must have put in place, and that it works.
service_check() {
	local prefix=$1 etc=$2 unitdir=$3 p page out
	for p in "${programs[@]}"; do
		[[ -x $prefix/bin/$p ]] || e2e_fail "$prefix/bin/$p missing"
		cmp -s "$from/$p" "$prefix/bin/$p" || e2e_fail "$prefix/bin/$p is not the built one"
		[[ -f $prefix/share/bash-completion/completions/$p ]] || e2e_fail "no bash completion for $p"
		bash -n "$prefix/share/bash-completion/completions/$p" || e2e_fail "bash completion for $p does not parse"
		[[ -f $prefix/share/zsh/site-functions/_$p ]] || e2e_fail "no zsh completion for $p"
		[[ -f $prefix/share/fish/vendor_completions.d/$p.fish ]] || e2e_fail "no fish completion for $p"
	done
	for page in "${pages[@]}"; do
		out=$(MANPAGER=cat MANWIDTH=100 man -l "$prefix/share/man/$page" 2>&1) || e2e_fail "man -l $page: $out"
		grep -q '^NAME' <<<"$out" || e2e_fail "man -l $page shows no NAME section: $out"
	done
	MANPAGER=cat MANWIDTH=100 man -l "$prefix/share/man/man8/moshd.8" | grep -q 'check-config' ||
		e2e_fail "moshd(8) does not document check-config"
	out=$("$prefix/bin/moshd" check-config "$etc/mosh/moshd.toml") || e2e_fail "default configuration: $out"
	[[ $out == "moshd: $etc/mosh/moshd.toml: OK" ]] || e2e_fail "check-config said: $out"
	grep -qx "ExecStart=$prefix/bin/moshd --config $etc/mosh/moshd.toml" "$unitdir/moshd.service" ||
		e2e_fail "the unit does not run the installed moshd with the installed file"
	# What the service is promised to be (issue 6): readiness, its directories, the hardening.
	local d
	for d in Type=notify RuntimeDirectory=moshd StateDirectory=moshd NoNewPrivileges=yes \
		ProtectSystem=strict ProtectHome=yes CapabilityBoundingSet=CAP_NET_BIND_SERVICE \
		'ExecReload=/bin/kill -HUP $MAINPID'; do
		grep -qxF "$d" "$unitdir/moshd.service" || e2e_fail "the installed unit lacks $d"
	done
	# verify runs man for Documentation=man:moshd(8): the page must be where man looks. It also
	# exits 0 on a bad setting (it only warns "ignoring"): no output at all is the pass.
	out=$(MANPATH="$prefix/share/man:" systemd-analyze verify "$unitdir/moshd.service" 2>&1) ||
		e2e_fail "systemd-analyze verify failed: $out"
	[[ -z $out ]] || e2e_fail "systemd-analyze verify warned: $out"
	echo "checked: $prefix (configuration in $etc, unit in $unitdir)" >&2
}

# listed PREFIX : the paths of the manifest's entries.
listed() { awk '{print $NF}' "$1/share/mosh-mux/install-manifest"; }

e2e_step "install into a temporary prefix"
tmp=$(mktemp -d /tmp/mmx-install.XXXXXX)
lab_defer rm -rf "$tmp"
trap 'lab_down' EXIT
"$repo/scripts/install" --prefix "$tmp" --from "$from"
service_check "$tmp" "$tmp/etc" "$tmp/lib/systemd/system"
mapfile -t installed < <(listed "$tmp")
((${#installed[@]} > 30)) || e2e_fail "the manifest lists only ${#installed[@]} paths"

e2e_step "install again over a changed configuration: kept; uninstall: all gone but that file"
echo '[limits]
max_sessions_per_user = 3' >>"$tmp/etc/mosh/moshd.toml"
"$repo/scripts/install" --prefix "$tmp" --from "$from" 2>&1 | tee "$tmp.log" >&2
grep -q "moshd.toml exists: kept as it is" "$tmp.log" || e2e_fail "install did not keep the configuration"
grep -q 'max_sessions_per_user = 3' "$tmp/etc/mosh/moshd.toml" || e2e_fail "the configuration was overwritten"
out=$("$repo/scripts/uninstall" --prefix "$tmp" 2>&1) || e2e_fail "uninstall failed: $out"
rm -f "$tmp.log"
echo "$out" >&2
grep -q "moshd.toml was changed since install: kept" <<<"$out" || e2e_fail "uninstall did not say it kept the file"
left=$(cd "$tmp" && find . -mindepth 1 | sort | tr '\n' ' ')
[[ $left == "./etc ./etc/mosh ./etc/mosh/moshd.toml " ]] || e2e_fail "left after uninstall: $left"

e2e_step "install and uninstall an untouched tree: nothing is left"
rm -rf "${tmp:?}"/etc
"$repo/scripts/install" --prefix "$tmp" --from "$from" 2>/dev/null
"$repo/scripts/uninstall" --prefix "$tmp"
left=$(cd "$tmp" && find . -mindepth 1)
[[ -z $left ]] || e2e_fail "left after uninstall: $left"

# ---- The real system (root only; the e2e runner runs as root) ----------------------------------
real=(/usr/local/bin/moshd /usr/local/bin/mosh-server-mux /usr/local/bin/mosh-client-mux
	/usr/local/bin/mosh-mux /etc/mosh/moshd.toml /etc/systemd/system/moshd.service
	/usr/local/share/mosh-mux/install-manifest /run/moshd/control.sock)
present=()
for f in "${real[@]}"; do [[ ! -e $f ]] || present+=("$f"); done
if ((${#present[@]})); then
	# Someone's real installation: never overwrite it from a test.
	[[ ${CI:-} != true ]] || e2e_fail "CI: the real install would overwrite ${present[*]}"
	echo "NOTE: not installing into / (already present: ${present[*]})" >&2
	echo PASS
	exit 0
fi
[[ $(id -u) == 0 ]] || e2e_fail "the real install needs root"

e2e_step "install into the real system (prefix /usr/local, /etc)"
etc_mosh_existed=false
[[ ! -d /etc/mosh ]] || etc_mosh_existed=true
# What moshd itself makes when it runs (not install's): removed here if it was not there before.
for d in /var/lib/moshd /run/moshd; do
	[[ -e $d ]] || lab_defer rm -rf "$d"
done
lab_defer "$repo/scripts/uninstall"
"$repo/scripts/install" --from "$from"
service_check /usr/local /etc /etc/systemd/system
page=$(man -w moshd || true)
[[ -n $page && $(realpath "$page") == /usr/local/share/man/man8/moshd.8 ]] ||
	e2e_fail "man moshd does not find the installed page (found: ${page:-nothing})"
if ! out=$(systemd-analyze verify /etc/systemd/system/moshd.service 2>&1) || [[ -n $out ]]; then
	e2e_fail "systemd-analyze verify (default man path): $out"
fi

e2e_step "the installed programs serve a session with no configuration: mosh-mux root@server"
lab_up
lab_firewall mux 60001
# moshd as installed and as the unit would run it: its default file, its default socket.
pid=$(lab_spawn server moshd /usr/local/bin/moshd --config /etc/mosh/moshd.toml)
lab_defer kill "$pid"
for _ in $(seq 1 50); do
	/usr/local/bin/moshd status >/dev/null 2>&1 && break
	sleep 0.1
done
/usr/local/bin/moshd status >&2 || { cat "$LAB_DIR/moshd.log" >&2; e2e_fail "the installed moshd does not answer"; }
e2e_marker_cmd "$LAB_ID-inst"
lab_term_start inst /usr/local/bin/mosh-mux --ssh="$LAB_SSH" "root@$LAB_SERVER_IP" -- "${E2E_CMD[@]}"
lab_term_wait inst "$(e2e_marker "$LAB_ID-inst")" 30 || { cat "$LAB_DIR/moshd.log" >&2; e2e_fail "no session"; }
# shellcheck disable=SC2016 # expanded by the remote shell
lab_term_type inst 'echo installed-$((6*7))'
lab_term_wait inst '^installed-42$' 15
json=$(/usr/local/bin/moshd status --json)
python3 - "$json" <<'PY' || e2e_fail "moshd status does not show the framed session: $json"
import json, sys
s = json.loads(sys.argv[1])["sessions"]
assert len(s) == 1 and s[0]["client_kind"] == "framed" and s[0]["client"].startswith("198.51.100.2:"), s
PY
lab_term_output inst | grep -q 'mosh-server-mux: session registered with moshd' ||
	e2e_fail "mosh-server-mux did not register (direct mode?): $(lab_term_output inst | head -c 1500)"
lab_term_type inst exit
lab_term_wait_exit inst 15 >/dev/null || e2e_fail "mosh-mux did not exit"
kill "$pid"
for _ in $(seq 1 50); do [[ -e /run/moshd/control.sock ]] || break; sleep 0.1; done
[[ ! -e /run/moshd/control.sock ]] || e2e_fail "moshd left its socket behind on SIGTERM"

e2e_step "uninstall from the real system: everything install put is gone"
"$repo/scripts/uninstall"
for f in "${real[@]}" /usr/local/share/man/man8/moshd.8 /usr/local/share/bash-completion/completions/moshd; do
	[[ ! -e $f ]] || e2e_fail "$f is still there"
done
[[ $etc_mosh_existed == true || ! -e /etc/mosh ]] || e2e_fail "/etc/mosh is still there"
echo PASS
