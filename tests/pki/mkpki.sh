#!/bin/sh
# mkpki.sh: makes the demo and test PKI with certtool (ECDSA P-256): a root
# and an issuing CA with their CRLs, two server certificates (SNI) and the
# client certificates the tests and the demo use. Idempotent: does nothing
# when OUTDIR/.done exists.
#
# usage: tests/pki/mkpki.sh OUTDIR
#
# Files written to OUTDIR:
#   root.pem root.key root.crl (empty)       CN=Corp Root CA,O=Corp,C=US
#   issuing.pem issuing.key issuing.crl      CN=Corp Issuing CA,O=Corp,C=US;
#                                            the CRL revokes revoked.pem
#   ca-chain.pem                             issuing + root
#   server.pem server.key server-chain.pem   CN=localhost; SAN localhost,
#                                            intranet.test, 127.0.0.1
#   other.pem other.key other-chain.pem      CN=other.test; SAN other.test
#   NAME.pem NAME.key NAME-chain.pem         client certificates (the chain
#                                            file is the certificate, then
#                                            its issuing CA):
#     alice       CN=Alice,OU=Engineering,O=Corp,C=US (one-to-one account;
#                 SAN email alice@corp.example)
#     bob         CN=Bob,OU=Engineering,O=Corp,C=US (many-to-one)
#     mallory     CN=Mallory,O=Contractor Inc,C=US (a denied subject)
#     expired     CN=Expired,OU=Engineering,O=Corp,C=US, valid 2020 only
#     revoked     CN=Revoked,OU=Engineering,O=Corp,C=US, in issuing.crl
#     upn         CN=Frank,OU=Sales,O=Corp,C=US, SAN otherName msUPN
#                 (1.3.6.1.4.1.311.20.2.3) frank@corp.example
#     serveronly  CN=ServerOnly,OU=Engineering,O=Corp,C=US, EKU serverAuth only
#     rogue       CN=Alice,OU=Engineering,O=Corp,C=US issued by the untrusted
#                 rogue-ca.pem (CN=Rogue CA,O=Rogue,C=US): alice's name,
#                 the wrong issuer
#   *.tmpl                                   the certtool templates
#
# Leaf certificates are valid for 365 days from now, the CAs from 2019 to
# 2045, the CRLs for 90 days.

set -eu

if [ $# -ne 1 ]; then
	echo "usage: $0 OUTDIR" >&2
	exit 2
fi
out=$1
if [ -f "$out/.done" ]; then
	exit 0
fi
mkdir -p "$out"
cd "$out"
umask 022

log=.certtool.log
: > "$log"

# Run certtool quietly; show its output only when it fails.
ct() {
	if ! certtool "$@" >> "$log" 2>&1; then
		echo "mkpki.sh: certtool $* failed:" >&2
		cat "$log" >&2
		exit 1
	fi
}

key() {
	ct --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text \
	    --outfile "$1.key"
	chmod 600 "$1.key"
}

# ca NAME SIGNER: a CA certificate from NAME.tmpl, self-signed when SIGNER
# is empty.
ca() {
	key "$1"
	if [ -z "$2" ]; then
		ct --generate-self-signed --load-privkey "$1.key" \
		    --template "$1.tmpl" --no-text --outfile "$1.pem"
	else
		ct --generate-certificate --load-privkey "$1.key" \
		    --load-ca-certificate "$2.pem" --load-ca-privkey "$2.key" \
		    --template "$1.tmpl" --no-text --outfile "$1.pem"
	fi
}

# leaf NAME ISSUER: a certificate from NAME.tmpl, plus NAME-chain.pem.
leaf() {
	key "$1"
	ct --generate-certificate --load-privkey "$1.key" \
	    --load-ca-certificate "$2.pem" --load-ca-privkey "$2.key" \
	    --template "$1.tmpl" --no-text --outfile "$1.pem"
	cat "$1.pem" "$2.pem" > "$1-chain.pem"
}

# client NAME SERIAL DN [EXTRA TEMPLATE LINES]
client() {
	{
		echo "dn = \"$3\""
		echo "serial = $2"
		echo "expiration_days = 365"
		echo "signing_key"
		echo "tls_www_client"
		if [ $# -ge 4 ]; then
			printf '%s\n' "$4"
		fi
	} > "$1.tmpl"
	leaf "$1" issuing
}

cat > root.tmpl <<'EOF'
dn = "CN=Corp Root CA,O=Corp,C=US"
serial = 0x01
activation_date = "2019-01-01 00:00:00"
expiration_date = "2045-01-01 00:00:00"
ca
path_len = 1
cert_signing_key
crl_signing_key
EOF
ca root ""

cat > issuing.tmpl <<'EOF'
dn = "CN=Corp Issuing CA,O=Corp,C=US"
serial = 0x02
activation_date = "2019-01-01 00:00:00"
expiration_date = "2045-01-01 00:00:00"
ca
path_len = 0
cert_signing_key
crl_signing_key
EOF
ca issuing root
cat issuing.pem root.pem > ca-chain.pem

cat > rogue-ca.tmpl <<'EOF'
dn = "CN=Rogue CA,O=Rogue,C=US"
serial = 0x03
activation_date = "2019-01-01 00:00:00"
expiration_date = "2045-01-01 00:00:00"
ca
cert_signing_key
crl_signing_key
EOF
ca rogue-ca ""

cat > server.tmpl <<'EOF'
dn = "CN=localhost,O=Corp,C=US"
serial = 0x1001
expiration_days = 365
dns_name = "localhost"
dns_name = "intranet.test"
ip_address = "127.0.0.1"
signing_key
tls_www_server
EOF
leaf server issuing

cat > other.tmpl <<'EOF'
dn = "CN=other.test,O=Corp,C=US"
serial = 0x1002
expiration_days = 365
dns_name = "other.test"
signing_key
tls_www_server
EOF
leaf other issuing

client alice 0x2001 "CN=Alice,OU=Engineering,O=Corp,C=US" \
    'email = "alice@corp.example"'
client bob 0x2002 "CN=Bob,OU=Engineering,O=Corp,C=US"
client mallory 0x2003 "CN=Mallory,O=Contractor Inc,C=US"
client revoked 0x2005 "CN=Revoked,OU=Engineering,O=Corp,C=US"
client upn 0x2006 "CN=Frank,OU=Sales,O=Corp,C=US" \
    'other_name_utf8 = "1.3.6.1.4.1.311.20.2.3 frank@corp.example"'

cat > expired.tmpl <<'EOF'
dn = "CN=Expired,OU=Engineering,O=Corp,C=US"
serial = 0x2004
activation_date = "2020-01-01 00:00:00"
expiration_date = "2021-01-01 00:00:00"
signing_key
tls_www_client
EOF
leaf expired issuing

cat > serveronly.tmpl <<'EOF'
dn = "CN=ServerOnly,OU=Engineering,O=Corp,C=US"
serial = 0x2007
expiration_days = 365
signing_key
tls_www_server
EOF
leaf serveronly issuing

cat > rogue.tmpl <<'EOF'
dn = "CN=Alice,OU=Engineering,O=Corp,C=US"
serial = 0x2001
expiration_days = 365
signing_key
tls_www_client
EOF
leaf rogue rogue-ca

cat > crl.tmpl <<'EOF'
crl_next_update = 90
crl_number = 1
EOF
ct --generate-crl --load-ca-privkey issuing.key --load-ca-certificate issuing.pem \
    --load-certificate revoked.pem --template crl.tmpl --no-text \
    --outfile issuing.crl
ct --generate-crl --load-ca-privkey root.key --load-ca-certificate root.pem \
    --template crl.tmpl --no-text --outfile root.crl

rm -f "$log"
touch .done
