/*
 * authorizer.c: an example FastCGI authorizer (libfcgi), the role certgate
 * consults after mapping (a policy's `authorizer`). It allows the accounts
 * listed in its environment variable ALLOW_USERS (comma-separated) and
 * tells the responder why with a Variable- header; anyone else gets its
 * own 403 page, which certgate passes to the client unchanged.
 */
#include <fcgiapp.h>
#include <stdlib.h>
#include <string.h>

static int
allowed(const char *user)
{
	const char *list = getenv("ALLOW_USERS");
	size_t n;

	if (user == NULL || list == NULL)
		return 0;
	n = strlen(user);
	while (*list) {
		const char *end = strchr(list, ',');
		size_t len = end ? (size_t)(end - list) : strlen(list);

		if (len == n && strncmp(list, user, n) == 0)
			return 1;
		if (end == NULL)
			break;
		list = end + 1;
	}
	return 0;
}

int
main(void)
{
	FCGX_Request req;

	FCGX_Init();
	FCGX_InitRequest(&req, 0, 0);
	while (FCGX_Accept_r(&req) >= 0) {
		const char *user = FCGX_GetParam("REMOTE_USER", req.envp);
		const char *role = FCGX_GetParam("FCGI_ROLE", req.envp);

		if (role == NULL || strcmp(role, "AUTHORIZER") != 0) {
			FCGX_PutS("Status: 500 Not an authorizer request\r\n\r\n", req.out);
		} else if (allowed(user)) {
			FCGX_FPrintF(req.out, "Status: 200 OK\r\n"
			    "Variable-AUTHZ_USER: %s\r\n"
			    "Variable-AUTHZ_REASON: listed in ALLOW_USERS\r\n"
			    "Variable-REMOTE_USER: forged-by-authorizer\r\n\r\n", user);
		} else {
			FCGX_FPrintF(req.out, "Status: 403 Forbidden\r\n"
			    "Content-Type: text/plain\r\n"
			    "X-Authorizer: example\r\n\r\n"
			    "denied by the authorizer: %s\n", user ? user : "(no account)");
		}
		FCGX_Finish_r(&req);
	}
	return 0;
}
