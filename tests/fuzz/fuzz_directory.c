/*
 * fuzz_directory.c: libFuzzer target for what certauth/directory.c reads
 * from a directory's answers (group DNs, binary objectSid) and writes into
 * filters: a group name never grows past its DN, a SID's text is
 * well-formed, and an escaped value holds no filter metacharacter.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "certauth/certauth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *g, *e, sid[256];
	size_t i;

	memcpy(s, data, size);
	s[size] = '\0';
	g = ca_dn_group_name(s);
	if (strlen(g) > strlen(s))
		abort();
	free(g);
	e = ca_ldap_escape((const char *)data, size);
	for (i = 0; e[i] != '\0'; i++)
		if (e[i] == '*' || e[i] == '(' || e[i] == ')' || (unsigned char)e[i] >= 0x80 ||
		    (e[i] == '\\' && (cg_hexval((unsigned char)e[i + 1]) < 0 ||
		    cg_hexval((unsigned char)e[i + 2]) < 0)))
			abort();
	if (i != strlen(e) || i > 3 * size)
		abort();
	free(e);
	if (ca_sid_to_string(data, size, sid, sizeof(sid)) == 0) {
		if (strncmp(sid, "S-1-", 4) != 0)
			abort();
		for (i = 4; sid[i] != '\0'; i++)
			if ((sid[i] < '0' || sid[i] > '9') && sid[i] != '-')
				abort();
	}
	free(s);
	return 0;
}
