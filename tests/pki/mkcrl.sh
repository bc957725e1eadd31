#!/bin/sh
# mkcrl.sh: makes the fixtures for certauth's trust and revocation tests
# (tests/unit/test_trust.c) with certtool (ECDSA P-256): a root, an issuing
# CA, and one certificate or CRL per case that ca_verify must decide.
# Idempotent: does nothing when OUTDIR/.done exists.
#
# usage: tests/pki/mkcrl.sh OUTDIR
#
# CAs (CAs valid 2019..2045; every DN ends ",O=certgate test,C=US"):
#   root.pem root.key root.der     CN=CRL Test Root CA, self-signed (root.der:
#                                  the same in DER)
#   int.pem int.key                CN=CRL Test Issuing CA, under root
#   ca-bundle.pem                  root + int in one PEM file
#   int2.pem int2.key              CN=CRL Test Sub CA, under int (path_len 0)
#   revca.pem revca.key            CN=CRL Test Revoked CA, under root, listed
#                                  in root.crl
#   nocrl-ca.pem nocrl-ca.key      CN=CRL Test No-CRL CA, under root; no CRL
#                                  anywhere
#   nocrlsign-ca.pem ...key        CN=CRL Test No-cRLSign CA, under root; key
#                                  usage keyCertSign only, signs a CRL anyway
#   impostor.pem impostor.key      CN=CRL Test Issuing CA (int's name), its
#                                  own key, self-signed, trusted by nobody
#   unknown-ca.pem unknown-ca.key  CN=CRL Test Unknown CA, self-signed,
#                                  trusted by nobody
# CRLs (valid from now for 90 days unless said otherwise):
#   root.crl                       root's; revokes revca
#   int.crl                        int's; revokes revoked and revoked-expired
#   int-revokes-good.crl           int's next CRL (number 2): also revokes good
#   int2.crl revca.crl             empty, valid
#   nocrlsign.crl                  signed by nocrlsign-ca (no cRLSign)
#   badsig.crl                     int's name and AKI, signed by impostor.key:
#                                  bad signature
#   wrongissuer.crl                signed by impostor: int's name, another AKI
#   expired.crl                    int's, 2020-01-01 .. 2020-02-01 (past its
#                                  nextUpdate); revokes revoked
#   critical.crl                   int's, with the unknown critical extension
#                                  1.3.6.1.4.1.32473.1 (made with openssl:
#                                  certtool cannot add CRL extensions; absent
#                                  when openssl is not installed)
# Client certificates (NAME.pem NAME.key, and NAME-chain.pem: the
# certificate, then the intermediates a client sends, never the root):
#   good              under int, clientAuth, valid 365 days from now
#   revoked           under int, in int.crl
#   revoked-expired   under int, valid 2020 only, in int.crl
#   revca-leaf        under revca (revoked by root.crl)
#   nocrl-leaf        under nocrl-ca
#   nocrlsign-leaf    under nocrlsign-ca
#   deep-leaf         under int2: chain deep-leaf, int2, int (3 before root)
#   serveronly        under int, EKU serverAuth only
#   expired-leaf      under int, valid 2020 only
#   notyet-leaf       under int, valid 2040 only
#   selfsigned        self-signed, clientAuth (no chain file)
#   unknown-leaf      under unknown-ca (CN=Good, good's serial)
#   forged            int's name and AKI as issuer, signed by impostor.key:
#                     a bad signature
#   *.tmpl            the certtool templates

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
		echo "mkcrl.sh: certtool $* failed:" >&2
		cat "$log" >&2
		exit 1
	fi
}

key() {
	ct --generate-privkey --key-type=ecdsa --curve=secp256r1 --no-text \
	    --outfile "$1.key"
	chmod 600 "$1.key"
}

# tmpl NAME DN SERIAL LINES...: writes NAME.tmpl.
tmpl() {
	n=$1 dn=$2 serial=$3
	shift 3
	{
		echo "dn = \"$dn,O=certgate test,C=US\""
		echo "serial = $serial"
		for l; do
			echo "$l"
		done
	} > "$n.tmpl"
}

# cert NAME SIGNER: NAME.pem from NAME.tmpl, self-signed when SIGNER is "".
cert() {
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

# leaf NAME SIGNER CHAIN...: a client certificate and NAME-chain.pem.
leaf() {
	n=$1
	cert "$n" "$2"
	shift 2
	cat "$n.pem" "$@" > "$n-chain.pem"
}

# crl OUT CA-KEY CA-CERT TEMPLATE [REVOKED-CERT...]: the revoked
# certificates go to certtool as one PEM file.
crl() {
	o=$1 k=$2 c=$3 t=$4
	shift 4
	if [ $# -gt 0 ]; then
		cat "$@" > .revoked.pem
		ct --generate-crl --load-ca-privkey "$k" --load-ca-certificate "$c" \
		    --load-certificate .revoked.pem --template "$t" --no-text \
		    --outfile "$o"
		rm -f .revoked.pem
	else
		ct --generate-crl --load-ca-privkey "$k" --load-ca-certificate "$c" \
		    --template "$t" --no-text --outfile "$o"
	fi
}

CA_DATES='activation_date = "2019-01-01 00:00:00"
expiration_date = "2045-01-01 00:00:00"'
CA_USE='ca
cert_signing_key
crl_signing_key'
CLIENT='signing_key
tls_www_client'

# ---- CAs ----
tmpl root "CN=CRL Test Root CA" 0x01 "$CA_DATES" "$CA_USE"
cert root ""
ct --certificate-info --infile root.pem --outder --outfile root.der

tmpl int "CN=CRL Test Issuing CA" 0x02 "$CA_DATES" "$CA_USE" "path_len = 1"
cert int root
cat root.pem int.pem > ca-bundle.pem

tmpl int2 "CN=CRL Test Sub CA" 0x03 "$CA_DATES" "$CA_USE" "path_len = 0"
cert int2 int

tmpl revca "CN=CRL Test Revoked CA" 0x04 "$CA_DATES" "$CA_USE" "path_len = 0"
cert revca root

tmpl nocrl-ca "CN=CRL Test No-CRL CA" 0x05 "$CA_DATES" "$CA_USE" "path_len = 0"
cert nocrl-ca root

# keyCertSign without cRLSign: the CA may issue certificates but not CRLs.
tmpl nocrlsign-ca "CN=CRL Test No-cRLSign CA" 0x06 "$CA_DATES" ca cert_signing_key \
    "path_len = 0"
cert nocrlsign-ca root

tmpl impostor "CN=CRL Test Issuing CA" 0x07 "$CA_DATES" "$CA_USE"
cert impostor ""

tmpl unknown-ca "CN=CRL Test Unknown CA" 0x08 "$CA_DATES" "$CA_USE"
cert unknown-ca ""

# ---- client certificates ----
tmpl good "CN=Good" 0x1001 "expiration_days = 365" "$CLIENT"
leaf good int int.pem
tmpl revoked "CN=Revoked" 0x1002 "expiration_days = 365" "$CLIENT"
leaf revoked int int.pem
tmpl revoked-expired "CN=Revoked Expired" 0x1003 \
    'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2021-01-01 00:00:00"' \
    "$CLIENT"
leaf revoked-expired int int.pem
tmpl revca-leaf "CN=Under Revoked CA" 0x1004 "expiration_days = 365" "$CLIENT"
leaf revca-leaf revca revca.pem
tmpl nocrl-leaf "CN=Under No-CRL CA" 0x1005 "expiration_days = 365" "$CLIENT"
leaf nocrl-leaf nocrl-ca nocrl-ca.pem
tmpl nocrlsign-leaf "CN=Under No-cRLSign CA" 0x1006 "expiration_days = 365" "$CLIENT"
leaf nocrlsign-leaf nocrlsign-ca nocrlsign-ca.pem
tmpl deep-leaf "CN=Deep" 0x1007 "expiration_days = 365" "$CLIENT"
leaf deep-leaf int2 int2.pem int.pem
tmpl serveronly "CN=Server Only" 0x1008 "expiration_days = 365" signing_key tls_www_server
leaf serveronly int int.pem
tmpl expired-leaf "CN=Expired" 0x1009 \
    'activation_date = "2020-01-01 00:00:00"' 'expiration_date = "2021-01-01 00:00:00"' \
    "$CLIENT"
leaf expired-leaf int int.pem
tmpl notyet-leaf "CN=Not Yet" 0x100a \
    'activation_date = "2040-01-01 00:00:00"' 'expiration_date = "2041-01-01 00:00:00"' \
    "$CLIENT"
leaf notyet-leaf int int.pem
tmpl selfsigned "CN=Self Signed" 0x100b "expiration_days = 365" "$CLIENT"
cert selfsigned ""
tmpl unknown-leaf "CN=Good" 0x1001 "expiration_days = 365" "$CLIENT"
leaf unknown-leaf unknown-ca unknown-ca.pem
# int's name and AKI, impostor's signature (certtool does not check that
# the CA key matches the CA certificate).
tmpl forged "CN=Forged" 0x100c "expiration_days = 365" "$CLIENT"
key forged
ct --generate-certificate --load-privkey forged.key --load-ca-certificate int.pem \
    --load-ca-privkey impostor.key --template forged.tmpl --no-text --outfile forged.pem
cat forged.pem int.pem > forged-chain.pem

# ---- CRLs ----
printf 'crl_next_update = 90\ncrl_number = 1\n' > crl.tmpl
printf 'crl_next_update = 90\ncrl_number = 2\n' > crl2.tmpl
printf '%s\n' 'crl_this_update_date = "2020-01-01 00:00:00"' \
    'crl_next_update_date = "2020-02-01 00:00:00"' 'crl_number = 1' > crl-expired.tmpl

crl root.crl root.key root.pem crl.tmpl revca.pem
crl int.crl int.key int.pem crl.tmpl revoked.pem revoked-expired.pem
crl int-revokes-good.crl int.key int.pem crl2.tmpl revoked.pem revoked-expired.pem good.pem
crl int2.crl int2.key int2.pem crl.tmpl
crl revca.crl revca.key revca.pem crl.tmpl
crl nocrlsign.crl nocrlsign-ca.key nocrlsign-ca.pem crl.tmpl
# certtool does not check that the key matches the CA certificate: the CRL
# gets int's issuer name and AKI, and a signature by another key.
crl badsig.crl impostor.key int.pem crl.tmpl
crl wrongissuer.crl impostor.key impostor.pem crl.tmpl
crl expired.crl int.key int.pem crl-expired.tmpl revoked.pem

# certtool cannot put an arbitrary extension into a CRL (add_extension is
# for certificates only), so this one CRL comes from `openssl ca -gencrl`,
# which signs with int's key; a one-shot, empty CA database, nothing else.
rm -f critical.crl
if command -v openssl >/dev/null 2>&1; then
	: > .ossl-index.txt
	cat > .ossl.cnf <<'EOF'
[ ca ]
default_ca = crlca
[ crlca ]
database = .ossl-index.txt
default_md = sha256
default_crl_days = 90
crl_extensions = crlext
[ crlext ]
authorityKeyIdentifier = keyid:always
1.3.6.1.4.1.32473.1 = critical,DER:05:00
EOF
	if ! openssl ca -batch -gencrl -config .ossl.cnf -cert int.pem -keyfile int.key \
	    -out critical.crl >> "$log" 2>&1; then
		echo "mkcrl.sh: openssl ca -gencrl failed:" >&2
		cat "$log" >&2
		exit 1
	fi
	rm -f .ossl.cnf .ossl-index.txt .ossl-index.txt.attr .ossl-index.txt.old
else
	echo "mkcrl.sh: openssl not found: critical.crl not made" >&2
fi

rm -f "$log"
touch .done
