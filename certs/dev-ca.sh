#!/usr/bin/env bash
# dev-ca.sh OUTDIR HOST...
#
# Makes a development CA and a serving certificate signed by it, for running
# statekeeper outside a cluster (make run, envtest, the local e2e suite).
# Writes OUTDIR/ca.crt, OUTDIR/tls.crt and OUTDIR/tls.key (what
# `statekeeper serve --cert-dir OUTDIR` reads); the CA key stays in
# OUTDIR/ca.key so the serving certificate can be re-issued for other hosts.
# Each HOST becomes a subjectAltName: an IP address when it looks like one
# (IPv4 or IPv6), a DNS name otherwise. The first HOST is the common name.
#
# Nothing here is for production: use cert-manager (certs/cert-manager.yaml or
# the chart's default tls.mode) there. Never commit the output.
set -euo pipefail

usage() {
	echo "usage: $0 OUTDIR HOST [HOST...]" >&2
	echo "example: $0 .local/certs 127.0.0.1 localhost" >&2
	exit 2
}

[[ $# -ge 2 ]] || usage
outdir=$1
shift

command -v openssl >/dev/null || { echo "$0: openssl not found" >&2; exit 1; }

is_ip() {
	[[ $1 =~ ^[0-9]{1,3}(\.[0-9]{1,3}){3}$ || $1 == *:* ]]
}

sans=()
for host in "$@"; do
	[[ -n $host ]] || { echo "$0: empty host" >&2; exit 2; }
	if is_ip "$host"; then
		sans+=("IP:$host")
	else
		sans+=("DNS:$host")
	fi
done
san_list=$(IFS=,; echo "${sans[*]}")

mkdir -p "$outdir"
# Keys are private to the user who runs the server.
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The CA is kept across runs so that a caBundle already registered in a
# cluster stays valid; only the serving certificate is re-issued.
if [[ ! -s $outdir/ca.key || ! -s $outdir/ca.crt ]]; then
	openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
		-subj "/O=statekeeper development/CN=statekeeper development CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" \
		-keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
	mv "$work/ca.key" "$outdir/ca.key"
	mv "$work/ca.crt" "$outdir/ca.crt"
fi

cat >"$work/ext.cnf" <<EXT
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san_list
EXT

openssl req -new -newkey rsa:2048 -nodes -sha256 \
	-subj "/O=statekeeper development/CN=$1" \
	-keyout "$work/tls.key" -out "$work/tls.csr" 2>/dev/null
openssl x509 -req -sha256 -days 365 \
	-in "$work/tls.csr" -CA "$outdir/ca.crt" -CAkey "$outdir/ca.key" -CAcreateserial \
	-extfile "$work/ext.cnf" -out "$work/tls.crt" 2>/dev/null

# Replace the pair in one step each, so a server watching OUTDIR never reads a
# half-written file.
mv "$work/tls.key" "$outdir/tls.key.new" && mv "$outdir/tls.key.new" "$outdir/tls.key"
mv "$work/tls.crt" "$outdir/tls.crt.new" && mv "$outdir/tls.crt.new" "$outdir/tls.crt"
chmod 644 "$outdir/ca.crt" "$outdir/tls.crt"

echo "$0: wrote $outdir/ca.crt, $outdir/tls.crt, $outdir/tls.key for $san_list"
