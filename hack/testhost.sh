#!/usr/bin/env bash
# Test hosts for the fault suite (test/faults): each is a network namespace
# with its own address, joined to the host by a veth pair, so that a
# statekeeper replica in it is an endpoint of its own, as a pod is. Needs
# root (CAP_NET_ADMIN) and iproute2.
#
#   hack/testhost.sh add NAME HOST_ADDR NS_ADDR OWNER_PID
#       make netns NAME and the pair NAME (host side, HOST_ADDR/30) <->
#       eth0 (in NAME, NS_ADDR/30); fails if NAME exists, so callers can
#       claim a free name by trying
#   hack/testhost.sh del NAME
#   hack/testhost.sh prune PREFIX
#       delete the hosts named PREFIX* whose owner process is gone
#
# Addresses come from 198.18.0.0/15 (RFC 2544's benchmarking range): never
# loopback, which an EndpointSlice refuses, nor a private range a real
# network may use.
set -euo pipefail

IP=${IP:-ip}
OWNERS=${TESTHOST_OWNERS:-/run/statekeeper-testhosts}

log() { printf '%s\n' "$*" >&2; }

add() {
	local name=$1 host_addr=$2 ns_addr=$3 owner=$4
	mkdir -p "$OWNERS"
	"$IP" netns add "$name" # the claim: fails when the name is taken
	echo "$owner" >"$OWNERS/$name"
	if ! {
		"$IP" link add "$name" type veth peer name eth0 netns "$name" &&
			"$IP" addr add "$host_addr/30" dev "$name" &&
			"$IP" link set "$name" up &&
			"$IP" -n "$name" addr add "$ns_addr/30" dev eth0 &&
			"$IP" -n "$name" link set eth0 up &&
			"$IP" -n "$name" link set lo up
	}; then
		del "$name"
		return 1
	fi
}

del() {
	local name=$1
	# Deleting one end of the pair deletes both.
	"$IP" link del "$name" 2>/dev/null || true
	"$IP" netns del "$name" 2>/dev/null || true
	rm -f "$OWNERS/$name"
}

prune() {
	local prefix=$1 name owner
	for name in $("$IP" netns list | awk '{print $1}'); do
		[[ $name == "$prefix"* ]] || continue
		owner=$(cat "$OWNERS/$name" 2>/dev/null || echo 0)
		if ((owner > 0)) && kill -0 "$owner" 2>/dev/null; then
			continue
		fi
		log "removing test host $name (owner $owner is gone)"
		del "$name"
	done
}

case ${1:-} in
add)
	(($# == 5)) || { log "usage: $0 add NAME HOST_ADDR NS_ADDR OWNER_PID"; exit 2; }
	add "$2" "$3" "$4" "$5"
	;;
del)
	(($# == 2)) || { log "usage: $0 del NAME"; exit 2; }
	del "$2"
	;;
prune)
	(($# == 2)) || { log "usage: $0 prune PREFIX"; exit 2; }
	prune "$2"
	;;
*)
	log "usage: $0 add|del|prune ..."
	exit 2
	;;
esac
