#!/usr/bin/env bash
# scripts/lab.sh - network-namespace test lab for mosh-mux end-to-end tests.
#
# As a library (tests):           . scripts/lab.sh; lab_up; ...   (set -euo pipefail friendly)
#   lab_up installs an EXIT/INT/TERM trap that calls lab_down; register extra cleanup with
#   lab_defer instead of replacing that trap.
# By hand:  scripts/lab.sh up         build a lab, print its variables, hold it until Ctrl-C
#           scripts/lab.sh down DIR   tear down the lab whose LAB_DIR is DIR (leftover sweeper)
#
# Topology (all addresses exist only inside the lab's namespaces; IPv6 is off on every link):
#
#   client ns  eth0 198.51.100.2 --+
#   (lab_add_client: 198.51.100.x)-+-- br0 198.51.100.1  [router ns]  eth1 203.0.113.1 ---
#                                                         --- eth0 203.0.113.10 [server ns]
#
# Server ns: sshd on 203.0.113.10:22 (own host key and config; keys live in LAB_DIR),
# optional nftables input firewall (lab_firewall). Router ns: forwarding, optional masquerade,
# loss and CE marking via nftables. Client ns: tmux-driven terminals (lab_term_*).
#
# Every resource is recorded in $LAB_DIR/resources as it is created; teardown is driven by that
# file only, so it also works from another process (scripts/lab.sh down DIR).

LAB_CLIENT_NET=198.51.100
LAB_SERVER_NET=203.0.113
LAB_SERVER_IP=${LAB_SERVER_NET}.10
LAB_TERM_COLS=120
LAB_TERM_ROWS=40
LAB_DEFERRED=()

_lab_log() { printf 'lab: %s\n' "$*" >&2; }
_lab_die() { _lab_log "error: $*"; return 1; }

# Record a resource for teardown: "ns NAME" | "user NAME" | "tmux SOCKET" | "delay NS DEV".
_lab_record() { printf '%s\n' "$*" >>"$LAB_DIR/resources"; }

# Skip (exit 77) when the lab cannot exist at all here: not root, or no network namespaces.
_lab_preflight() {
	if [[ $(id -u) -ne 0 ]]; then
		echo "SKIP: the lab needs root (network namespaces, useradd)" >&2
		exit 77
	fi
	local probe="mmxprobe$$"
	if ! ip netns add "$probe" 2>/dev/null; then
		echo "SKIP: 'ip netns add' is not possible here" >&2
		exit 77
	fi
	ip netns del "$probe"
	local c
	for c in ip nft tmux ssh ssh-keygen /usr/sbin/sshd useradd userdel runuser mosh mosh-server mosh-client; do
		command -v "$c" >/dev/null || _lab_die "missing prerequisite: $c" || return 1
	done
}

# Resolve a namespace alias (client|router|server) or pass a full namespace name through.
_lab_ns() {
	case $1 in
	client) echo "$LAB_CLIENT_NS" ;;
	router) echo "$LAB_ROUTER_NS" ;;
	server) echo "$LAB_SERVER_NS" ;;
	*) echo "$1" ;;
	esac
}

# lab_ns_exec NS CMD... : run CMD in namespace NS (client|router|server or a full name).
lab_ns_exec() {
	local ns
	ns=$(_lab_ns "$1")
	shift
	ip netns exec "$ns" "$@"
}

# Create a namespace with loopback up and IPv6 off for every link added later.
_lab_new_ns() {
	_lab_record "ns $1"
	ip netns add "$1"
	ip -n "$1" link set lo up
	ip netns exec "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
}

# Attach namespace NS to the router's client bridge with ADDR/24 on its eth0.
_lab_attach_client() {
	local ns=$1 addr=$2 peer=$3
	ip link add eth0 netns "$ns" type veth peer name "$peer" netns "$LAB_ROUTER_NS"
	ip -n "$LAB_ROUTER_NS" link set "$peer" master br0 up
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" link set eth0 up
	ip -n "$ns" route add default via "${LAB_CLIENT_NET}.1"
}

# lab_up : build the three namespaces, keys, sshd, and install the teardown trap.
lab_up() {
	_lab_preflight
	if [[ -n ${LAB_DIR:-} && -d ${LAB_DIR:-} ]]; then
		_lab_die "a lab is already up in $LAB_DIR" || return 1
	fi
	local i hex
	LAB_DIR=
	for i in $(seq 1 50); do
		hex=$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')
		if mkdir -m 0755 "/tmp/mmx$hex" 2>/dev/null; then
			LAB_ID="mmx$hex"
			LAB_DIR="/tmp/$LAB_ID"
			break
		fi
	done
	[[ -n $LAB_DIR ]] || _lab_die "no free lab id after $i tries" || return 1
	chmod 0755 "$LAB_DIR"
	: >"$LAB_DIR/resources"
	[[ -z ${LAB_REGISTRY:-} ]] || echo "$LAB_DIR" >>"$LAB_REGISTRY"
	export LAB_ID LAB_DIR LAB_SERVER_IP
	export LAB_CLIENT_NS="$LAB_ID-client" LAB_ROUTER_NS="$LAB_ID-router" LAB_SERVER_NS="$LAB_ID-server"
	export LAB_SSH_CONFIG="$LAB_DIR/ssh_config"
	export LAB_SSH="ssh -F $LAB_SSH_CONFIG"
	export LAB_TMUX_SOCK="$LAB_DIR/tmux.sock"
	export LAB_BIN="$LAB_DIR/bin"
	trap 'lab_down' EXIT
	trap 'lab_down; exit 130' INT
	trap 'lab_down; exit 143' TERM
	_lab_log "up: $LAB_ID in $LAB_DIR"

	# Namespaces and links.
	_lab_new_ns "$LAB_ROUTER_NS"
	_lab_new_ns "$LAB_CLIENT_NS"
	_lab_new_ns "$LAB_SERVER_NS"
	local r=$LAB_ROUTER_NS s=$LAB_SERVER_NS
	ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
	ip -n "$r" link add br0 type bridge
	ip -n "$r" addr add "${LAB_CLIENT_NET}.1/24" dev br0
	ip -n "$r" link set br0 up
	_lab_attach_client "$LAB_CLIENT_NS" "${LAB_CLIENT_NET}.2" c-client
	ip link add eth0 netns "$s" type veth peer name eth1 netns "$r"
	ip -n "$r" addr add "${LAB_SERVER_NET}.1/24" dev eth1
	ip -n "$r" link set eth1 up
	ip -n "$s" addr add "$LAB_SERVER_IP/24" dev eth0
	ip -n "$s" link set eth0 up
	ip -n "$s" route add default via "${LAB_SERVER_NET}.1"

	# Server-side record of UDP sources (address:port) admitted into the server (lab_server_peers).
	ip netns exec "$s" nft -f - <<EOF
table inet ${LAB_ID}_peers {
  set sources {
    type ipv4_addr . inet_service
    flags dynamic
    size 65535
  }
  chain input {
    type filter hook input priority 10;
    iif != lo meta l4proto udp add @sources { ip saddr . udp sport }
  }
}
EOF

	# Keys, authorized_keys (outside /root/.ssh), client ssh_config.
	mkdir -m 0755 "$LAB_DIR/bin" "$LAB_DIR/authorized_keys"
	ssh-keygen -q -t ed25519 -N '' -C "$LAB_ID-host" -f "$LAB_DIR/ssh_host_ed25519_key"
	ssh-keygen -q -t ed25519 -N '' -C "$LAB_ID-client" -f "$LAB_DIR/id_ed25519"
	install -m 0644 "$LAB_DIR/id_ed25519.pub" "$LAB_DIR/authorized_keys/root"
	cat >"$LAB_SSH_CONFIG" <<EOF
Host *
  IdentityFile $LAB_DIR/id_ed25519
  IdentitiesOnly yes
  StrictHostKeyChecking no
  UserKnownHostsFile /dev/null
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
  BatchMode yes
  ConnectTimeout 5
  ControlMaster no
  ControlPath none
  ForwardAgent no
  ForwardX11 no
EOF

	# sshd in the server namespace. UsePAM no: key login for root and for useradd'ed users
	# (created with password '*', since '!' marks a locked account). StrictModes no because
	# LAB_DIR lives under world-writable /tmp.
	cat >"$LAB_DIR/sshd_config" <<EOF
ListenAddress $LAB_SERVER_IP:22
HostKey $LAB_DIR/ssh_host_ed25519_key
PidFile $LAB_DIR/sshd.pid
AuthorizedKeysFile $LAB_DIR/authorized_keys/%u
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
X11Forwarding no
PrintMotd no
PrintLastLog no
MaxStartups 50:30:100
LogLevel VERBOSE
EOF
	mkdir -m 0755 /run/sshd 2>/dev/null || [[ -d /run/sshd ]]
	ip netns exec "$s" /usr/sbin/sshd -D -f "$LAB_DIR/sshd_config" -E "$LAB_DIR/sshd.log" \
		</dev/null >/dev/null 2>&1 &
	disown
	for i in $(seq 1 50); do
		[[ -z $(ip netns exec "$s" ss -Hltn "sport = :22") ]] || break
		sleep 0.1
	done
	[[ -n $(ip netns exec "$s" ss -Hltn "sport = :22") ]] ||
		_lab_die "sshd did not start; see $LAB_DIR/sshd.log" || return 1
	lab_ssh root true || _lab_die "ssh root@$LAB_SERVER_IP failed; see $LAB_DIR/sshd.log" || return 1

	# tmux configuration for lab_term_* (server started on first use).
	cat >"$LAB_DIR/tmux.conf" <<EOF
set -g remain-on-exit on
set -g default-terminal xterm-256color
set -g history-limit 5000
set -g status off
EOF
	# For another shell on the same lab: . scripts/lab.sh; . $LAB_DIR/env
	local v
	for v in LAB_ID LAB_DIR LAB_SERVER_IP LAB_CLIENT_NS LAB_ROUTER_NS LAB_SERVER_NS \
		LAB_SSH_CONFIG LAB_SSH LAB_TMUX_SOCK LAB_BIN; do
		printf 'export %s=%q\n' "$v" "${!v}"
	done >"$LAB_DIR/env"
}

# lab_defer CMD... : run CMD during lab_down (last registered runs first).
lab_defer() { LAB_DEFERRED+=("$(printf '%q ' "$@")"); }

# lab_down : tear everything down; idempotent, never fails.
lab_down() {
	local opts=$- i
	set +e
	for ((i = ${#LAB_DEFERRED[@]} - 1; i >= 0; i--)); do
		eval "${LAB_DEFERRED[i]}" >/dev/null 2>&1
	done
	LAB_DEFERRED=()
	if [[ -n ${LAB_DIR:-} && -d ${LAB_DIR:-} ]]; then
		_lab_teardown_dir "$LAB_DIR"
		_lab_log "down: ${LAB_ID:-?}"
	fi
	[[ $opts != *e* ]] || set -e
	return 0
}

# Print those of the given pids that are still running (not gone, not zombies awaiting a reaper).
_lab_live() {
	local pid state
	for pid in "$@"; do
		state=$(awk '/^State:/ { print $2; exit }' "/proc/$pid/status" 2>/dev/null) || continue
		[[ -z $state || $state == Z ]] || echo "$pid"
	done
}

# Tear down the lab recorded in DIR/resources. Safe to run twice or from another process.
_lab_teardown_dir() {
	local dir=$1 kind name rest pid round pids
	[[ $dir =~ ^/tmp/mmx[0-9a-f]{4}$ && -f $dir/resources ]] || return 0
	local nss=() users=() socks=() delays=() dns ddev
	while read -r kind name rest; do
		case $kind in
		ns) nss+=("$name") ;;
		user) users+=("$name") ;;
		tmux) socks+=("$name") ;;
		delay) delays+=("$name $rest") ;;
		esac
	done <"$dir/resources"
	# Delays first (lab_delay): their rules go before the programs serving them are killed below.
	for name in "${delays[@]}"; do
		read -r dns ddev <<<"$name"
		_lab_delay_stop "$dir" "$dns" "$ddev" now 2>/dev/null
	done
	# tmux servers run in the root namespace: kill the one listening on our socket, by pid.
	for name in "${socks[@]}"; do
		pid=$(TMUX='' tmux -S "$name" display-message -p '#{pid}' 2>/dev/null) || pid=
		TMUX='' tmux -S "$name" kill-server 2>/dev/null
		[[ -z $pid ]] || kill -9 "$pid" 2>/dev/null
	done
	# Everything inside the namespaces and everything owned by lab users (bounded rounds).
	for round in 1 2 3 4 5 6 7 8 9 10; do
		pids=()
		for name in "${nss[@]}"; do
			[[ -e /run/netns/$name ]] || continue
			mapfile -t -O "${#pids[@]}" pids < <(ip netns pids "$name" 2>/dev/null)
		done
		for name in "${users[@]}"; do
			id -u "$name" >/dev/null 2>&1 || continue
			mapfile -t -O "${#pids[@]}" pids < <(pgrep -u "$name" 2>/dev/null)
		done
		mapfile -t pids < <(_lab_live "${pids[@]}")
		((${#pids[@]})) || break
		kill -9 "${pids[@]}" 2>/dev/null
		sleep 0.1
		[[ $round -lt 10 ]] || _lab_log "warning: processes survive teardown: ${pids[*]}"
	done
	for name in "${users[@]}"; do
		[[ $name == mmx* ]] || continue
		for round in 1 2 3 4 5 6 7 8 9 10; do
			id -u "$name" >/dev/null 2>&1 || break
			userdel -r -f "$name" >/dev/null 2>&1 && break
			sleep 0.3 # /etc/passwd lock held by a concurrent useradd/userdel
		done
		! id -u "$name" >/dev/null 2>&1 || _lab_log "warning: could not remove user $name"
	done
	for ((round = ${#nss[@]} - 1; round >= 0; round--)); do
		name=${nss[round]}
		[[ ! -e /run/netns/$name ]] || ip netns del "$name" 2>/dev/null ||
			_lab_log "warning: could not delete netns $name"
	done
	rm -rf -- "$dir"
}

# lab_add_client NAME ADDR : another client host (namespace $LAB_ID-NAME, ADDR/24 on the client
# bridge, default route via the router). Prints the namespace name.
lab_add_client() {
	local name=$1 addr=$2 ns
	[[ $name =~ ^[a-z0-9]{1,10}$ && $name != client && $name != router && $name != server ]] ||
		_lab_die "lab_add_client: bad name '$name' (1-10 of [a-z0-9])" || return 1
	[[ $addr =~ ^198\.51\.100\.([3-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$ ]] ||
		_lab_die "lab_add_client: address must be 198.51.100.3-254" || return 1
	ns="$LAB_ID-$name"
	_lab_new_ns "$ns"
	_lab_attach_client "$ns" "$addr" "c-$name"
	echo "$ns"
}

# lab_client_move NS ADDR : roaming; give client namespace NS the new address ADDR (old removed).
lab_client_move() {
	local ns addr=$2
	ns=$(_lab_ns "$1")
	[[ $addr =~ ^198\.51\.100\.([2-9]|[1-9][0-9]|1[0-9][0-9]|2[0-4][0-9]|25[0-4])$ ]] ||
		_lab_die "lab_client_move: address must be in 198.51.100.2-254" || return 1
	ip -n "$ns" addr flush dev eth0
	ip -n "$ns" addr add "$addr/24" dev eth0
	ip -n "$ns" route replace default via "${LAB_CLIENT_NET}.1"
}

# lab_add_user SUFFIX : create local user $LAB_ID$SUFFIX with a home, authorize the lab key for
# it, print the name. Removed (with its processes) by lab_down.
lab_add_user() {
	local user="$LAB_ID$1" i
	[[ $user =~ ^[a-z][a-z0-9_-]{0,31}$ ]] || _lab_die "lab_add_user: bad user name '$user'" || return 1
	_lab_record "user $user"
	for i in $(seq 1 20); do
		useradd -m -p '*' -s /bin/bash "$user" 2>"$LAB_DIR/useradd.err" && break
		grep -q 'lock' "$LAB_DIR/useradd.err" || { cat "$LAB_DIR/useradd.err" >&2; return 1; }
		sleep 0.3
	done
	id -u "$user" >/dev/null || return 1
	install -m 0644 "$LAB_DIR/id_ed25519.pub" "$LAB_DIR/authorized_keys/$user"
	echo "$user"
}

# lab_ssh USER CMD... : run CMD on the server as USER over the lab's ssh, from the client ns.
lab_ssh() {
	local user=$1
	shift
	ip netns exec "$LAB_CLIENT_NS" ssh -F "$LAB_SSH_CONFIG" "$user@$LAB_SERVER_IP" -- "$@" </dev/null
}

# lab_server_as USER CMD... : run CMD directly in the server namespace as USER (no ssh).
lab_server_as() {
	local user=$1
	shift
	ip netns exec "$LAB_SERVER_NS" runuser -u "$user" -- "$@"
}

# lab_spawn NS NAME CMD... : start CMD in the background in NS, output to $LAB_DIR/NAME.log;
# prints its pid. Killed by lab_down with everything else in the namespace.
lab_spawn() {
	local ns name=$2
	ns=$(_lab_ns "$1")
	shift 2
	ip netns exec "$ns" "$@" </dev/null >>"$LAB_DIR/$name.log" 2>&1 &
	echo $!
	disown
}

# lab_install_bins : copy moshd, mosh-server-mux, mosh-client-mux from $MOSH_MUX_BIN into
# $LAB_BIN (mode 0755, readable by lab users).
lab_install_bins() {
	local src=${MOSH_MUX_BIN:-} b
	[[ -n $src ]] || _lab_die "MOSH_MUX_BIN is not set" || return 1
	for b in moshd mosh-server-mux mosh-client-mux; do
		[[ -x $src/$b ]] || _lab_die "missing binary $src/$b (build it first)" || return 1
		install -m 0755 "$src/$b" "$LAB_BIN/$b"
	done
}

# lab_firewall mux PORT | mosh | off : server input firewall, policy drop. Admits loopback,
# established/related, TCP 22, ICMP echo and errors, and UDP PORT (mux: an nft port or range)
# or 60000-61000 (mosh). Drops are counted: see lab_firewall_drops.
lab_firewall() {
	local mode=$1 ports table="${LAB_ID}_fw"
	case $mode in
	mux)
		ports=${2:?lab_firewall mux PORT}
		[[ $ports =~ ^[0-9]+(-[0-9]+)?$ ]] || _lab_die "lab_firewall: bad port '$ports'" || return 1
		;;
	mosh) ports=60000-61000 ;;
	off) ;;
	*) _lab_die "lab_firewall mux PORT|mosh|off" || return 1 ;;
	esac
	{
		echo "add table inet $table"
		echo "delete table inet $table"
		[[ $mode == off ]] || cat <<EOF
table inet $table {
  counter dropped {}
  chain input {
    type filter hook input priority filter; policy drop;
    iif lo accept
    ct state established,related accept
    ct state invalid drop
    tcp dport 22 accept
    udp dport $ports accept
    icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept
    counter name dropped
  }
}
EOF
	} | ip netns exec "$LAB_SERVER_NS" nft -f -
}

# lab_firewall_drops : packets dropped by the server firewall so far (0 when it is off).
lab_firewall_drops() {
	local out n
	out=$(ip netns exec "$LAB_SERVER_NS" nft list counter inet "${LAB_ID}_fw" dropped 2>/dev/null) || out=
	n=$(sed -n 's/.*packets \([0-9]*\).*/\1/p' <<<"$out")
	echo "${n:-0}"
}

# Write the router's NAT table: UDP conntrack zone ZONE (set before conntrack sees a packet),
# masquerade on eth1, UDP mapped into port range RANGE when given.
_lab_nat_table() {
	local table="${LAB_ID}_nat" zone=$1 range=${2:-} udp=''
	[[ -z $range ]] || udp="oifname \"eth1\" meta l4proto udp masquerade to :$range"
	ip netns exec "$LAB_ROUTER_NS" nft -f - <<EOF
add table ip $table
delete table ip $table
table ip $table {
  chain zone {
    type filter hook prerouting priority raw;
    meta l4proto udp ct zone set $zone
  }
  chain post {
    type nat hook postrouting priority srcnat;
    $udp
    oifname "eth1" masquerade
  }
}
EOF
}

# lab_server_peers : UDP sources (ADDR:PORT, one a line) that the server namespace has admitted
# from outside (past lab_firewall), since lab_up: shows roaming and NAT rebinding.
lab_server_peers() {
	ip netns exec "$LAB_SERVER_NS" nft list set inet "${LAB_ID}_peers" sources |
		{ grep -oE '[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+ \. [0-9]+' || true; } | sed 's/ \. /:/' | sort -u
}

# lab_router_masquerade on|off : masquerade client traffic leaving the router towards the server.
lab_router_masquerade() {
	case ${1:-} in
	on)
		echo 1 >"$LAB_DIR/nat_zone"
		_lab_nat_table 1
		;;
	off)
		rm -f "$LAB_DIR/nat_zone"
		printf 'add table ip %s\ndelete table ip %s\n' "${LAB_ID}_nat" "${LAB_ID}_nat" |
			ip netns exec "$LAB_ROUTER_NS" nft -f -
		;;
	*) _lab_die "lab_router_masquerade on|off" || return 1 ;;
	esac
}

# lab_router_rebind : NAT rebinding, instantly. UDP moves to a fresh conntrack zone, so every UDP
# flow gets a new mapping on its next datagram, taken from a port range that alternates between
# rebinds (20000-29999, 30000-39999) so the outside port really changes. Old mappings stop
# working (replies to them are not translated). TCP (ssh) keeps its mapping. Masquerade must be on.
lab_router_rebind() {
	local zone range
	zone=$(cat "$LAB_DIR/nat_zone" 2>/dev/null) || _lab_die "lab_router_rebind: masquerade is off" || return 1
	zone=$((zone + 1))
	if ((zone % 2)); then range=30000-39999; else range=20000-29999; fi
	_lab_nat_table "$zone" "$range"
	echo "$zone" >"$LAB_DIR/nat_zone"
}

# lab_router_loss PERCENT : drop PERCENT % of forwarded UDP in both directions (0 = off).
# Stand-in for tc netem loss, which this kernel may lack (see lab_have_netem).
lab_router_loss() {
	local pct=$1 table="${LAB_ID}_loss"
	[[ $pct =~ ^[0-9]+$ && $pct -le 100 ]] || _lab_die "lab_router_loss 0-100" || return 1
	{
		echo "add table inet $table"
		echo "delete table inet $table"
		# numgen's range is 0-99: "< 100" is refused, so 100% is a plain drop.
		local rule="meta l4proto udp numgen random mod 100 < $pct drop"
		[[ $pct -lt 100 ]] || rule="meta l4proto udp drop"
		[[ $pct -eq 0 ]] ||
			printf 'table inet %s {\n chain forwarding {\n  type filter hook forward priority filter;\n  %s\n }\n}\n' "$table" "$rule"
	} | ip netns exec "$LAB_ROUTER_NS" nft -f -
}

# lab_router_ce on|off : set ECN CE on forwarded ECT(0) UDP datagrams (simulated congestion).
lab_router_ce() {
	local table="${LAB_ID}_ce"
	[[ ${1:-} == on || ${1:-} == off ]] || _lab_die "lab_router_ce on|off" || return 1
	{
		echo "add table ip $table"
		echo "delete table ip $table"
		case $1 in
		on) printf 'table ip %s {\n chain forwarding {\n  type filter hook forward priority filter;\n  meta l4proto udp ip ecn ect0 ip ecn set ce\n }\n}\n' "$table" ;;
		off) ;;
		esac
	} | ip netns exec "$LAB_ROUTER_NS" nft -f -
}

# lab_have_netem [NS] : true when tc netem works here (many minimal kernels lack sch_netem);
# tried on NS's loopback (default: the router).
lab_have_netem() {
	local ns
	ns=$(_lab_ns "${1:-router}")
	ip netns exec "$ns" tc qdisc replace dev lo root netem delay 1ms >/dev/null 2>&1 || return 1
	ip netns exec "$ns" tc qdisc del dev lo root >/dev/null 2>&1
	return 0
}

# lab_netem NS DEV ARGS... : tc netem on DEV in NS (e.g. lab_netem router eth1 delay 100ms);
# "lab_netem NS DEV off" removes it.
lab_netem() {
	local ns dev=$2
	ns=$(_lab_ns "$1")
	shift 2
	if [[ ${1:-} == off ]]; then
		ip netns exec "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true
	else
		ip netns exec "$ns" tc qdisc replace dev "$dev" root netem "$@"
	fi
}

# lab_delay NS DEV MS : delay UDP that NS forwards out of DEV by MS milliseconds (one way; the
# round trip of a flow through DEV grows by MS). "lab_delay NS DEV off" removes it; lab_down
# removes it too. Sets LAB_DELAY_VIA to how it is done:
#  - "netem": tc netem on DEV where the kernel has it (lab_have_netem). netem delays everything
#    leaving DEV, TCP and the namespace's own packets included.
#  - "nfqueue": otherwise (no sch_netem, as on the 6.18 kernel the lab was written on; nftables
#    cannot hold packets, and this kernel lacks nft's queue expression too): an iptables-nft rule
#    (FORWARD -o DEV -p udp -j NFQUEUE, queue number = DEV's ifindex) hands those packets to
#    nfdelay ($MOSH_MUX_BIN/nfdelay, from the mosh-mux-bench crate; LAB_NFDELAY overrides), which
#    runs in NS, holds each for MS ms and accepts it, in arrival order, at most 4096 at once
#    (more are dropped and counted). No --queue-bypass: the rule exists only while nfdelay
#    serves the queue (it is added after nfdelay has bound it, removed before nfdelay is
#    stopped), and a delay that silently stopped would falsify a measurement. nfdelay exits by
#    itself after LAB_DELAY_MAX_S seconds (default 3600) whatever happens; its log, ending with a
#    line of counters ("nfdelay: exit ... dropped_over_bound=N ..."), is $LAB_DIR/nfdelay-DEV.log.
#    Beware: whenever a netfilter hook of NS goes away (an nft table with a base chain deleted,
#    as "lab_router_loss 0" does), the kernel drops every packet then held (counted as flushed).
# LAB_DELAY_VIA=netem|nfqueue set beforehand forces one way (e.g. to try nfqueue on a kernel that
# has netem).
lab_delay() {
	local ns dev=$2 ms=${3:-} via=${LAB_DELAY_VIA:-} state q pid bin i
	ns=$(_lab_ns "$1")
	[[ $dev =~ ^[a-zA-Z0-9_.-]{1,15}$ ]] || _lab_die "lab_delay: bad device '$dev'" || return 1
	state="$LAB_DIR/delay-$ns-$dev"
	if [[ $ms == off ]]; then
		_lab_delay_stop "$LAB_DIR" "$ns" "$dev"
		return
	fi
	[[ $ms =~ ^[0-9]+$ && $ms -ge 1 && $ms -le 10000 ]] ||
		_lab_die "lab_delay NS DEV MS|off (MS: 1-10000)" || return 1
	[[ ! -e $state ]] || _lab_delay_stop "$LAB_DIR" "$ns" "$dev"
	case $via in
	netem | nfqueue) ;;
	'') if lab_have_netem "$ns"; then via=netem; else via=nfqueue; fi ;;
	*) _lab_die "LAB_DELAY_VIA must be netem or nfqueue" || return 1 ;;
	esac
	LAB_DELAY_VIA=$via
	if [[ $via == netem ]]; then
		lab_netem "$ns" "$dev" delay "${ms}ms" || return 1
		echo "netem" >"$state"
		_lab_record "delay $ns $dev"
		return 0
	fi
	command -v iptables-nft >/dev/null ||
		_lab_die "lab_delay: no tc netem and no iptables-nft (Debian: apt-get install iptables)" || return 1
	bin=${LAB_NFDELAY:-${MOSH_MUX_BIN:-}/nfdelay}
	[[ -x $bin ]] || _lab_die "lab_delay: no tc netem and no nfdelay at '$bin' (cargo build --release)" || return 1
	install -m 0755 "$bin" "$LAB_BIN/nfdelay"
	q=$(ip -n "$ns" -o link show dev "$dev" | cut -d: -f1)
	[[ $q =~ ^[0-9]+$ ]] || _lab_die "lab_delay: no device $dev in $ns" || return 1
	_lab_record "delay $ns $dev"
	pid=$(lab_spawn "$ns" "nfdelay-$dev" "$LAB_BIN/nfdelay" --queue "$q" --delay-ms "$ms" \
		--max-lifetime "${LAB_DELAY_MAX_S:-3600}")
	echo "nfqueue $q $pid $ms" >"$state"
	# Bound when the kernel lists the queue (per namespace: /proc/net follows the reader's).
	for ((i = 0; i < 100; i++)); do
		# shellcheck disable=SC2016 # an awk program
		ip netns exec "$ns" awk -v q="$q" '$1 == q { f = 1 } END { exit !f }' \
			/proc/net/netfilter/nfnetlink_queue 2>/dev/null && break
		[[ -n $(_lab_live "$pid") ]] || break
		sleep 0.05
	done
	if ((i == 100)) || [[ -z $(_lab_live "$pid") ]]; then
		cat "$LAB_DIR/nfdelay-$dev.log" >&2
		_lab_delay_stop "$LAB_DIR" "$ns" "$dev"
		_lab_die "lab_delay: nfdelay did not bind queue $q" || return 1
	fi
	ip netns exec "$ns" iptables-nft -A FORWARD -o "$dev" -p udp -j NFQUEUE --queue-num "$q" ||
		{ _lab_delay_stop "$LAB_DIR" "$ns" "$dev"; return 1; }
}

# _lab_delay_stop DIR NS DEV [now] : undo lab_delay for NS DEV of the lab in DIR, if it is on:
# the rule first, then (after the delay, so that nothing held leaves early, unless "now") nfdelay,
# waiting (bounded) for its exit line. Works from another process (teardown); never fails.
_lab_delay_stop() {
	local dir=$1 ns=$2 dev=$3 now=${4:-} state via q pid ms i
	state="$dir/delay-$ns-$dev"
	[[ -f $state ]] || return 0
	read -r via q pid ms <"$state" || true
	rm -f "$state"
	if [[ $via == netem ]]; then
		[[ ! -e /run/netns/$ns ]] || ip netns exec "$ns" tc qdisc del dev "$dev" root 2>/dev/null || true
		return 0
	fi
	[[ $q =~ ^[0-9]+$ && $pid =~ ^[0-9]+$ && $ms =~ ^[0-9]+$ ]] || return 0
	[[ -e /run/netns/$ns ]] || return 0
	ip netns exec "$ns" iptables-nft -D FORWARD -o "$dev" -p udp -j NFQUEUE --queue-num "$q" 2>/dev/null || true
	# Only our nfdelay: the pid must still be in that namespace with that name.
	ip netns pids "$ns" 2>/dev/null | grep -x "$pid" >/dev/null &&
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == nfdelay ]] || return 0
	if [[ $now != now ]]; then
		sleep "$(printf '0.%03d' $((ms % 1000)))"
		sleep $((ms / 1000))
	fi
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 50; i++)); do
		[[ -n $(_lab_live "$pid") ]] || break
		sleep 0.1
	done
	grep 'nfdelay: exit' "$dir/nfdelay-$dev.log" 2>/dev/null | tail -n 1 | sed 's/^/lab: /' >&2 || true
	return 0
}

# tmux wrapper on the lab's private socket (root namespace; panes enter a namespace).
_lab_tmux() { TMUX='' tmux -S "$LAB_TMUX_SOCK" -f "$LAB_DIR/tmux.conf" "$@"; }

# lab_term_start_in NS NAME CMD... : like lab_term_start, in namespace NS.
lab_term_start_in() {
	local ns name=$2
	ns=$(_lab_ns "$1")
	shift 2
	[[ -S $LAB_TMUX_SOCK ]] || _lab_record "tmux $LAB_TMUX_SOCK"
	# The command waits (bounded) until pipe-pane records the terminal's whole output stream in
	# $LAB_DIR/term-NAME.out, so text that is later overwritten on screen can still be checked.
	local go=$LAB_DIR/term-$name.go
	_lab_tmux new-session -d -s "$name" -x "$LAB_TERM_COLS" -y "$LAB_TERM_ROWS" -- \
		ip netns exec "$ns" env -u LC_ALL -u LC_CTYPE -u LANGUAGE -u TMUX \
		LANG=C.UTF-8 TERM=xterm-256color sh -c \
		'i=0; while [ ! -e "$0" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; exec "$@"' \
		"$go" "$@"
	_lab_tmux pipe-pane -o -t "=$name:" "cat >>'$LAB_DIR/term-$name.out'"
	touch "$go"
}

# lab_term_output NAME : everything the terminal's program wrote so far (escape sequences and
# carriage returns removed), including text no longer on screen.
lab_term_output() {
	sed -e 's/\x1b\[[0-9;?]*[a-zA-Z]//g' -e 's/\x1b[]()][^\x07]*\x07//g' -e 's/\r//g' \
		"$LAB_DIR/term-$1.out" 2>/dev/null
}

# lab_term_start NAME CMD... : detached 120x40 terminal running CMD in the client namespace
# (LANG=C.UTF-8, TERM=xterm-256color; the pane stays after CMD exits).
lab_term_start() { lab_term_start_in "$LAB_CLIENT_NS" "$@"; }

# lab_term_send NAME KEYS... : tmux send-keys (key names such as Enter, C-c, C-^).
lab_term_send() {
	local name=$1
	shift
	_lab_tmux send-keys -t "=$name:" "$@"
}

# lab_term_type NAME TEXT : type TEXT literally, then Enter.
lab_term_type() {
	_lab_tmux send-keys -t "=$1:" -l -- "$2"
	_lab_tmux send-keys -t "=$1:" Enter
}

# lab_term_screen NAME : print the visible screen (wrapped lines joined).
lab_term_screen() { _lab_tmux capture-pane -p -J -t "=$1:"; }

# lab_term_wait NAME REGEX TIMEOUT : wait until the screen matches extended REGEX; on timeout
# print the screen to stderr and return 1.
lab_term_wait() {
	local name=$1 re=$2 tries i
	tries=$(($3 * 5))
	for ((i = 0; i < tries; i++)); do
		# (no grep -q: exiting early would SIGPIPE the writer and fail the pipeline)
		lab_term_screen "$name" 2>/dev/null | grep -E -- "$re" >/dev/null && return 0
		sleep 0.2
	done
	{
		echo "lab: timeout after ${3}s waiting for /$re/ on terminal $name; screen:"
		lab_term_screen "$name" 2>&1 | sed 's/^/  | /'
	} >&2
	return 1
}

# lab_term_wait_exit NAME TIMEOUT : wait until the terminal's command has exited and print its
# exit status ("signal N" if a signal ended it); return 1 on timeout.
lab_term_wait_exit() {
	local name=$1 tries i st dead status signal server
	tries=$(($2 * 5))
	for ((i = 0; i < tries; i++)); do
		# tmux marks a pane dead on pty EOF, and fills in the status once it has reaped the child.
		st=$(_lab_tmux display-message -p -t "=$name:" '#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|#{pid}' 2>/dev/null) || st=
		IFS='|' read -r dead status signal server <<<"$st"
		if [[ $dead == 1 && -n $status ]]; then
			echo "$status"
			return 0
		elif [[ $dead == 1 && -n $signal ]]; then
			echo "signal $signal"
			return 0
		elif [[ $dead == 1 && $i -ge 2 && -n $server ]]; then
			# Debian's tmux uses libutempter, whose own SIGCHLD handler, installed while tmux
			# removes the pane's utmp record, can swallow the pane child's SIGCHLD
			# (tmux/tmux#311): the child stays a zombie and the status never arrives. A
			# SIGCHLD to our tmux server makes it reap.
			kill -CHLD "$server" 2>/dev/null || true
		fi
		sleep 0.2
	done
	_lab_log "timeout after ${2}s waiting for terminal $name to exit"
	return 1
}

# lab_term_kill NAME : close a terminal (its processes get SIGHUP).
lab_term_kill() { _lab_tmux kill-session -t "=$1" 2>/dev/null || true; }

# lab_router_blackout on|off : drop every forwarded UDP datagram, both directions (TCP, i.e. ssh,
# still passes). lab_router_loss 100 cannot say this (nft's "numgen random mod 100 < 100").
lab_router_blackout() {
	local table="${LAB_ID}_blackout"
	[[ ${1:-} == on || ${1:-} == off ]] || _lab_die "lab_router_blackout on|off" || return 1
	{
		echo "add table inet $table"
		echo "delete table inet $table"
		[[ $1 == off ]] ||
			printf 'table inet %s {\n chain forwarding {\n  type filter hook forward priority filter;\n  meta l4proto udp drop\n }\n}\n' "$table"
	} | ip netns exec "$LAB_ROUTER_NS" nft -f -
}

# lab_server_route off|on : the server host loses its default route (so it can reach nothing
# beyond its own link, 203.0.113.0/24: no reply reaches a client), or gets it back.
lab_server_route() {
	case ${1:-} in
	off) ip -n "$LAB_SERVER_NS" route del default 2>/dev/null || true ;;
	on) ip -n "$LAB_SERVER_NS" route replace default via "${LAB_SERVER_NET}.1" ;;
	*) _lab_die "lab_server_route off|on" || return 1 ;;
	esac
}

# lab_server_link down|up : the server host's only link (eth0) goes down, or comes back up with
# its default route (the kernel drops routes through a link that goes down).
lab_server_link() {
	case ${1:-} in
	down) ip -n "$LAB_SERVER_NS" link set eth0 down ;;
	up)
		ip -n "$LAB_SERVER_NS" link set eth0 up
		ip -n "$LAB_SERVER_NS" route replace default via "${LAB_SERVER_NET}.1"
		;;
	*) _lab_die "lab_server_link down|up" || return 1 ;;
	esac
}

# Command-line entry point (only when executed, not when sourced).
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	set -euo pipefail
	case ${1:-} in
	up)
		lab_up
		cat "$LAB_DIR/env"
		echo "lab: ssh:  ip netns exec $LAB_CLIENT_NS $LAB_SSH root@$LAB_SERVER_IP"
		echo "lab: holding for at most ${LAB_HOLD:-3600}s; Ctrl-C tears down"
		sleep "${LAB_HOLD:-3600}"
		;;
	down)
		[[ -n ${2:-} ]] || { echo "usage: $0 down LAB_DIR" >&2; exit 2; }
		_lab_teardown_dir "$2"
		;;
	*)
		echo "usage: $0 up | down LAB_DIR   (or source it: . scripts/lab.sh)" >&2
		exit 2
		;;
	esac
fi
