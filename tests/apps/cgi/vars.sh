#!/bin/sh
# A classic CGI script (run by fcgiwrap in tests/integration/test_real_apps.py):
# prints the certificate variables certgate exports, one NAME=value line each;
# a variable that is not set at all is printed as "NAME unset".
printf 'Content-Type: text/plain\r\n\r\n'
for name in SSL_CLIENT_S_DN REMOTE_USER CERT_SUBJECT GATEWAY_INTERFACE REQUEST_METHOD; do
	eval "isset=\${$name+x}"
	if [ -n "$isset" ]; then
		eval "printf '%s=%s\n' \"\$name\" \"\$$name\""
	else
		printf '%s unset\n' "$name"
	fi
done
