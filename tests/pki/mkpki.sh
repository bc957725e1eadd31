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
#   Certificates for the facts and export tests (tests/unit/test_facts.c),
#   issued by issuing.pem unless said otherwise:
#     multiou     CN=Multi User,title=Engineer,OU=Platform,OU=Engineering,
#                 O=Corp,C=US; SAN emails multi@corp.example,
#                 m.user@corp.example, mu@eng.corp.example, DNS
#                 multi.corp.example; serial 0x2010
#     utf8        CN=Zoë Ångström,O=Société Générale,C=FR
#     escape      values needing RFC 4514 escapes and IIS quotes: CN
#                 '#Smith, "Jr" + Co ' (leading '#', comma, quotes, plus,
#                 trailing space), O 'Corp; <Ltd>', two DCs, UID, GN, SN,
#                 initials, title, description, emailAddress in the DN
#     oddtypes    CN as a BMPString, OU as a UniversalString, O as a
#                 TeletexString (Latin-1), L with a control byte, an
#                 unknown type 1.2.3.4, a serialNumber that is a SEQUENCE
#     sid         CN=Sid User,OU=Engineering,O=Corp,C=US with the AD SID
#                 extension (1.3.6.1.4.1.311.25.2) holding
#                 S-1-5-21-1004336348-1177238915-682003330-1105
#     notyet      CN=Not Yet, valid 2040-01-01 to 2041-01-01
#     selfsigned  CN=Self Signed,O=Nowhere,C=US, self-signed, RSA 2048,
#                 sha256WithRSAEncryption
#     noeku       CN=No EKU,OU=Engineering,O=Corp,C=US, no extended key usage
#     rsa         CN=Rsa User,OU=Engineering,O=Corp,C=US, RSA 2048 key
#     ed25519     CN=Ed User,OU=Engineering,O=Corp,C=US, Ed25519 key
#     highserial  serial 0x00C0FFEE0042: high bit set, DER keeps a 00 byte
#     negserial   serial 0x8A1B2C3D written without the 00: a negative
#                 INTEGER, as some old CAs wrote them
#     large       a 17,000-character CN (over the 16 KiB export cap)
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

# ---- certificates for the facts and export tests ----

# keyof NAME TYPE: a private key of another type than key()'s.
keyof() {
	case $2 in
	rsa) ct --generate-privkey --key-type=rsa --bits=2048 --no-text \
	    --outfile "$1.key" ;;
	*) ct --generate-privkey --key-type="$2" --no-text --outfile "$1.key" ;;
	esac
	chmod 600 "$1.key"
}

# signed NAME ISSUER: like leaf, with the key already made.
signed() {
	ct --generate-certificate --load-privkey "$1.key" \
	    --load-ca-certificate "$2.pem" --load-ca-privkey "$2.key" \
	    --template "$1.tmpl" --no-text --outfile "$1.pem"
	cat "$1.pem" "$2.pem" > "$1-chain.pem"
}

client multiou 0x2010 \
    "CN=Multi User,title=Engineer,OU=Platform,OU=Engineering,O=Corp,C=US" \
    'email = "multi@corp.example"
dns_name = "multi.corp.example"
email = "m.user@corp.example"
email = "mu@eng.corp.example"'

client utf8 0x2011 "CN=Zoë Ångström,O=Société Générale,C=FR"

# One field a line: certtool's dn = parser cannot take these values.
cat > escape.tmpl <<'EOF'
cn = "#Smith, \"Jr\" + Co "
organization = "Corp; <Ltd>"
country = "US"
uid = "jsmith"
dc = "corp"
dc = "example"
pkcs9_email = "jsmith@corp.example"
dn_oid = "2.5.4.42 John"
dn_oid = "2.5.4.4 Smith"
dn_oid = "2.5.4.43 JS"
dn_oid = "2.5.4.12 Dr."
dn_oid = "2.5.4.13 Team lead"
serial = 0x2012
expiration_days = 365
signing_key
tls_www_client
EOF
leaf escape issuing

# Values given as DER: BMPString "Zoë", UniversalString "Ops", TeletexString
# "Soci\xe9t\xe9", UTF8String "a\x01b", UTF8String "odd", SEQUENCE { 5 }.
odd="2.5.4.3=#1E06005A006F00EB,2.5.4.11=#1C0C0000004F0000007000000073"
odd="$odd,2.5.4.10=#1407536F6369E974E9,2.5.4.7=#0C03610162"
odd="$odd,1.2.3.4=#0C036F6464,2.5.4.5=#3003020105,C=US"
client oddtypes 0x2013 "$odd"

# szOID_NTDS_CA_SECURITY_EXT (MS-WCCE 2.2.2.7.7.4), in DER: SEQUENCE {
# [0] { OID 1.3.6.1.4.1.311.25.2.1, [0] { OCTET STRING "S-1-5-21-..." } } }
sidext=303fa03d060a2b060104018237190201a02f042d
sidext=${sidext}532d312d352d32312d313030343333363334382d3131373732
sidext=${sidext}33383931352d3638323030333333302d31313035
client sid 0x2014 "CN=Sid User,OU=Engineering,O=Corp,C=US" \
    "add_extension = \"1.3.6.1.4.1.311.25.2 0x$sidext\""

cat > notyet.tmpl <<'EOF'
dn = "CN=Not Yet,OU=Engineering,O=Corp,C=US"
serial = 0x2015
activation_date = "2040-01-01 00:00:00"
expiration_date = "2041-01-01 00:00:00"
signing_key
tls_www_client
EOF
leaf notyet issuing

cat > selfsigned.tmpl <<'EOF'
dn = "CN=Self Signed,O=Nowhere,C=US"
serial = 0x2016
expiration_days = 365
signing_key
tls_www_client
EOF
keyof selfsigned rsa
ct --generate-self-signed --load-privkey selfsigned.key \
    --template selfsigned.tmpl --no-text --outfile selfsigned.pem

cat > noeku.tmpl <<'EOF'
dn = "CN=No EKU,OU=Engineering,O=Corp,C=US"
serial = 0x2017
expiration_days = 365
signing_key
EOF
leaf noeku issuing

cat > rsa.tmpl <<'EOF'
dn = "CN=Rsa User,OU=Engineering,O=Corp,C=US"
serial = 0x2018
expiration_days = 365
signing_key
tls_www_client
EOF
keyof rsa rsa
signed rsa issuing

cat > ed25519.tmpl <<'EOF'
dn = "CN=Ed User,OU=Engineering,O=Corp,C=US"
serial = 0x2019
expiration_days = 365
signing_key
tls_www_client
EOF
keyof ed25519 ed25519
signed ed25519 issuing

client highserial 0x00C0FFEE0042 "CN=High Serial,OU=Engineering,O=Corp,C=US"
client negserial 0x8A1B2C3D "CN=Negative Serial,OU=Engineering,O=Corp,C=US"

big=$(awk 'BEGIN { for (i = 0; i < 17000; i++) printf "A" }')
client large 0x201A "CN=$big,O=Corp,C=US"

rm -f "$log"
touch .done
