#!/bin/sh
# run.sh: certgate under valgrind memcheck on the TLS, verification,
# mapping and FastCGI paths (the demo configuration: certificates,
# accounts, a spawned libfcgi application), with a few real requests.
# Fails when valgrind reports any error or a definite leak in any certgate
# process (master and workers). Usage, from the top of the tree after
# `make` and `sh tests/pki/mkpki.sh examples/demo-pki`:
#     sh tests/valgrind/run.sh
set -u
logs=$(mktemp -d)
pki=examples/demo-pki
[ -f "$pki/.done" ] || sh tests/pki/mkpki.sh "$pki" >/dev/null
timeout 120 valgrind -q --leak-check=full --show-leak-kinds=definite \
    --errors-for-leak-kinds=definite --log-file="$logs/vg.%p.log" \
    ./certgate -f -c examples/demo.conf >"$logs/certgate.out" 2>&1 &
vg=$!
i=0
until curl -s -o /dev/null --cacert "$pki/ca-chain.pem" https://localhost:8443/ || [ $i -ge 60 ]; do
	sleep 0.5; i=$((i + 1))
done
for c in alice bob upn mallory revoked expired rogue; do
	for n in 1 2 3; do
		curl -s -o /dev/null -w "%{http_code} " --cacert "$pki/ca-chain.pem" \
		    --cert "$pki/$c-chain.pem" --key "$pki/$c.key" "https://localhost:8443/app/?json"
	done
done
curl -s -o /dev/null -w "%{http_code} " --cacert "$pki/ca-chain.pem" \
    --cert "$pki/alice-chain.pem" --key "$pki/alice.key" --data-binary @README \
    "https://localhost:8443/app/?echo"
curl -s -o /dev/null -w "%{http_code}\n" http://127.0.0.1:8080/
kill -TERM "$vg"
wait "$vg"
# Every log is a certgate process: applications are exec'd, and valgrind
# does not follow exec (--trace-children=no), only fork.
# valgrind does not know seccomp(2) (syscall 317 on amd64) and says so in
# five lines of its own, which are not a finding about certgate: libseccomp
# then installs a worker's filter (gateway/sandbox.c) through prctl(2).
bad=0
for f in "$logs"/vg.*.log; do
	awk '/unhandled amd64-linux syscall: 317$/ { skip = 5 } skip > 0 { skip--; next } { print }' \
	    "$f" >"$f.kept"
	if [ -s "$f.kept" ]; then
		cat "$f.kept"; bad=1
	fi
done
echo "valgrind: $(ls "$logs"/vg.*.log | wc -l) processes checked, $([ $bad = 0 ] && echo clean || echo ERRORS)"
rm -rf "$logs"
exit $bad
