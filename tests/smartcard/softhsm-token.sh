#!/bin/sh
# softhsm-token.sh: a SoftHSM2 token ("smart card") holding one client key
# and its certificate, for tests that present a certificate through a
# pkcs11: URI (gnutls-cli, curl built on GnuTLS, p11tool).
#
# usage: tests/smartcard/softhsm-token.sh DIR CERT.pem KEY.pem [LABEL]
#
# DIR gets its own SoftHSM2 configuration (DIR/softhsm2.conf, tokens in
# DIR/tokens), so nothing outside DIR is touched. The token is labelled
# LABEL (default "certgate-test"; letters, digits, '.', '_' and '-' only,
# so that it needs no escaping in a URI); the key and the certificate are
# imported with p11tool under the same object label and one CKA_ID.
# Printed on stdout, as NAME=value lines a shell can eval:
#
#   SOFTHSM2_CONF=DIR/softhsm2.conf   export it for every program using the token
#   SOFTHSM2_MODULE=/usr/lib/softhsm/libsofthsm2.so   (for --provider=)
#   SO_PIN=12345678                   fixed Security Officer PIN
#   PIN=1234                          fixed user PIN: GNUTLS_PIN=$PIN
#   TOKEN=LABEL
#   CERT_URI='pkcs11:token=LABEL;object=LABEL;type=cert'
#   KEY_URI='pkcs11:token=LABEL;object=LABEL;type=private'
#
# Then, for instance:
#   SOFTHSM2_CONF=... GNUTLS_PIN=1234 gnutls-cli --x509certfile "$CERT_URI" \
#       --x509keyfile "$KEY_URI" --x509cafile ca.pem -p 8443 localhost
# GnuTLS finds SoftHSM2 through p11-kit (Debian's libsofthsm2 installs
# /usr/share/p11-kit/modules/softhsm2.module); where p11-kit is not set
# up, add --provider="$SOFTHSM2_MODULE".
#
# Idempotent: a second run with the same certificate and key (and label)
# changes nothing and prints the same lines; with another certificate or
# key the token is made anew. Bounded: every tool runs under timeout(1).
#
# Needs (Debian): softhsm2, gnutls-bin (p11tool), coreutils.

set -eu

SO_PIN=12345678
PIN=1234
STEP_TIMEOUT=30

usage() {
	echo "usage: $0 DIR CERT.pem KEY.pem [LABEL]" >&2
	exit 2
}

die() {
	echo "softhsm-token.sh: $*" >&2
	exit 1
}

[ $# -eq 3 ] || [ $# -eq 4 ] || usage
dir=$1
cert=$2
key=$3
label=${4:-certgate-test}

case $label in
'' | *[!A-Za-z0-9._-]*) die "label \"$label\": use letters, digits, '.', '_' and '-' only" ;;
esac
[ ${#label} -le 32 ] || die "label \"$label\": at most 32 characters (PKCS #11 token label)"
[ -r "$cert" ] || die "cannot read certificate $cert"
[ -r "$key" ] || die "cannot read key $key"

for tool in softhsm2-util p11tool timeout sha256sum; do
	command -v "$tool" >/dev/null 2>&1 || die "$tool not found (Debian packages: softhsm2, gnutls-bin, coreutils)"
done

module=
for m in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
    /usr/lib/"$(uname -m)"-linux-gnu/softhsm/libsofthsm2.so; do
	if [ -f "$m" ]; then
		module=$m
		break
	fi
done
[ -n "$module" ] || die "libsofthsm2.so not found (Debian package: softhsm2)"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
mkdir -p "$dir/tokens"
chmod 700 "$dir/tokens"
conf=$dir/softhsm2.conf
cat > "$conf.tmp" <<EOF
# Written by softhsm-token.sh: a private token directory.
directories.tokendir = $dir/tokens
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
mv "$conf.tmp" "$conf"
SOFTHSM2_CONF=$conf
export SOFTHSM2_CONF

# The key must be the certificate's: one public key ID (SHA-1, as PKCS #11
# tools use it for CKA_ID) for both, and that is the pair's CKA_ID.
keyid() {
	timeout "$STEP_TIMEOUT" certtool --key-id --hash sha1 "$@" 2>/dev/null | tr -d ' \n'
}
id=$(keyid --infile "$cert")
[ -n "$id" ] || die "$cert: not a certificate certtool can read"
kid=$(keyid --load-privkey "$key")
[ -n "$kid" ] || die "$key: not a private key certtool can read"
[ "$id" = "$kid" ] || die "$key is not the key of $cert"

# What this token was made from: the label and both files' contents.
stamp=$dir/.token-$label
want=$(cat "$cert" "$key" | sha256sum | cut -d' ' -f1)

run() {
	# Quiet on success; the tool's output on failure.
	out=$(timeout "$STEP_TIMEOUT" "$@" 2>&1) || {
		rc=$?
		echo "softhsm-token.sh: failed (exit $rc): $*" >&2
		printf '%s\n' "$out" >&2
		exit 1
	}
}

has_token() {
	timeout "$STEP_TIMEOUT" softhsm2-util --show-slots 2>/dev/null |
	    awk -v l="$label" '$1 == "Label:" && $2 == l { found = 1 } END { exit !found }'
}

p11() {
	GNUTLS_PIN=$PIN GNUTLS_SO_PIN=$SO_PIN run p11tool --provider="$module" "$@"
}

cert_uri="pkcs11:token=$label;object=$label;type=cert"
key_uri="pkcs11:token=$label;object=$label;type=private"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && has_token; then
	: # made from these files already
else
	rm -f "$stamp"
	if has_token; then
		run softhsm2-util --delete-token --token "$label"
	fi
	run softhsm2-util --init-token --free --label "$label" --so-pin "$SO_PIN" --pin "$PIN"
	p11 --login --write --label "$label" --id="$id" --mark-private --mark-sign \
	    --load-privkey "$key" "pkcs11:token=$label"
	p11 --login --write --label "$label" --id="$id" --no-mark-private \
	    --load-certificate "$cert" "pkcs11:token=$label"
	printf '%s\n' "$want" > "$stamp"
fi

# The printed URIs must find exactly what was imported.
p11 --login --list-all-privkeys "$key_uri"
case $out in
*"$key_uri"* | *"object=$label;type=private"*) ;;
*) die "the private key is not found by $key_uri: $out" ;;
esac
p11 --list-all-certs "$cert_uri"
case $out in
*"object=$label;type=cert"*) ;;
*) die "the certificate is not found by $cert_uri: $out" ;;
esac

cat <<EOF
SOFTHSM2_CONF=$conf
SOFTHSM2_MODULE=$module
SO_PIN=$SO_PIN
PIN=$PIN
TOKEN=$label
CERT_URI='$cert_uri'
KEY_URI='$key_uri'
EOF
