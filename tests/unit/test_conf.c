/*
 * test_conf.c: the configuration loader: the table-driven reader
 * (common/conf.c) and the gateway's checks across keys (gateway/config.c).
 * Every error must read "FILE:LINE: message" with the offending line.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gateway_int.h"

static char dir[] = "/tmp/certgate-test-conf.XXXXXX";

static char *
write_conf(const char *name, const char *text)
{
	char *path = cg_printf("%s/%s", dir, name);
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

#define BASE \
	"workers = 1;\n" \
	"backends = { app = { connect = [ \"unix:/tmp/app.sock\" ]; }; };\n"
#define SITE \
	"sites = ( { name = \"s\"; listen = [ \"http://127.0.0.1:8080\" ];\n" \
	"  locations = ( { path = \"/\"; backend = \"app\"; } ); } );\n"

/* Loads text; returns the errors joined by newlines ("" when valid). */
static char *
load(const char *text, struct gw_config **out)
{
	struct cg_errors errs = { NULL, 0 };
	char *path = write_conf("c.conf", text), *all = cg_strdup("");
	struct gw_config *cfg = gw_config_load(path, &errs);
	size_t i;

	for (i = 0; i < errs.n; i++) {
		char *n = cg_printf("%s%s\n", all, errs.v[i]);

		free(all);
		all = n;
	}
	assert_true((cfg == NULL) == (errs.n > 0));
	if (out)
		*out = cfg;
	else
		gw_config_free(cfg);
	cg_errors_free(&errs);
	free(path);
	return all;
}

static void
expect_error(const char *text, int line, const char *fragment)
{
	char *errs = load(text, NULL), *want = cg_printf("%s/c.conf:%d: ", dir, line);

	if (strstr(errs, want) == NULL || strstr(errs, fragment) == NULL)
		fail_msg("expected \"%s...%s\", got:\n%s", want, fragment, errs);
	free(want);
	free(errs);
}

static void
test_valid(void **state)
{
	struct gw_config *cfg;
	char *errs = load(BASE SITE, &cfg);

	assert_string_equal(errs, "");
	assert_non_null(cfg);
	assert_int_equal(cfg->workers, 1);
	assert_int_equal(cfg->raw.limits.max_body_size, 10485760);	/* default */
	assert_int_equal(cfg->raw.shutdown_timeout, 30);
	assert_string_equal(cfg->raw.tls.priorities,
	    "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-RSA:-AES-256-CBC:-AES-128-CBC:%SERVER_PRECEDENCE");
	assert_int_equal(cfg->nlisteners, 1);
	assert_int_equal(cfg->listeners[0].port, 8080);
	assert_int_equal(cfg->nsites, 1);
	assert_ptr_equal(cfg->sites[0].locs[0].backend, &cfg->backends[0]);
	assert_string_equal(cfg->sites[0].locs[0].script_name, "");
	gw_config_free(cfg);
	free(errs);
}

static void
test_unknown_key(void **state)
{
	expect_error(BASE "limits = {\n  max_body = 5;\n};\n" SITE, 4, "unknown key \"max_body\" in limits");
	expect_error("bogus = 1;\n" BASE SITE, 1, "unknown key \"bogus\"");
}

static void
test_wrong_type(void **state)
{
	expect_error(BASE "limits = { max_body_size = \"big\"; };\n" SITE, 3,
	    "max_body_size: must be an integer");
	expect_error("workers = true;\nbackends = { app = { connect = [ \"unix:/a\" ]; }; };\n" SITE,
	    1, "workers: must be an integer or \"auto\"");
	expect_error(BASE "daemon = 1;\n" SITE, 3, "daemon: must be a boolean");
	expect_error(BASE "log_level = \"loud\";\n" SITE, 3, "\"loud\" is not one of");
	expect_error(BASE "limits = { max_headers = 0; };\n" SITE, 3, "out of range");
	/* A wrong type leaves the default behind, so the checks after it run
	 * on a whole struct (found by fuzz_conf: -t used to crash here). */
	expect_error(BASE "sites = ( { name = \"s\"; listen = [ \"https://127.0.0.1:1\" ];\n"
	    "  certificate = 5; key = 6; locations = ( { path = 7; backend = \"app\"; } ); } );\n",
	    4, "certificate: must be a string");
}

static void
test_dangling_backend(void **state)
{
	expect_error(BASE
	    "sites = ( { name = \"s\"; listen = [ \"http://127.0.0.1:8080\" ];\n"
	    "  locations = (\n"
	    "    { path = \"/\"; backend = \"app\"; },\n"
	    "    { path = \"/x/\";\n"
	    "      backend = \"nope\"; } ); } );\n", 7, "no backend named \"nope\"");
}

static void
test_bad_values(void **state)
{
	expect_error("workers = 1;\nbackends = { app = { connect = [ \"udp:1.2.3.4:5\" ]; }; };\n" SITE,
	    2, "expected \"unix:PATH\" or \"tcp:HOST:PORT\"");
	expect_error(BASE "sites = ( { name = \"s\"; listen = [ \"ftp://127.0.0.1:21\" ];\n"
	    "  locations = ( ); } );\n", 3, "expected \"https://HOST:PORT\"");
	expect_error(BASE "sites = ( { name = \"s\"; listen = [ \"https://127.0.0.1:8443\" ];\n"
	    "  locations = ( ); } );\n", 3, "needs \"certificate\" and \"key\"");
	expect_error(BASE "sites = ( { name = \"s\";\n  locations = ( ); } );\n", 3,
	    "missing required key \"listen\"");
	expect_error(BASE "tls = {\n priorities = \"NORMAL:+NONSENSE\"; };\n" SITE, 4,
	    "tls.priorities");
	expect_error(BASE "user = \"no-such-user-here\";\n" SITE, 3,
	    "user \"no-such-user-here\" does not exist");
}

static void
test_parse_error(void **state)
{
	expect_error("workers = 1\nbackends = ;\n", 2, "syntax error");
}

static void
test_include(void **state)
{
	char *inc = write_conf("backends.inc", "backends = { app = { connect = [ 5 ]; }; };\n");
	char *errs = load("workers = 1;\n@include \"backends.inc\"\n" SITE, NULL);
	/* FILE is the file as @include names it. */
	const char *want = "backends.inc:1: ";

	if (strncmp(errs, want, strlen(want)) != 0 || strstr(errs, "element 0 must be a string") == NULL)
		fail_msg("expected an error in the included file, got:\n%s", errs);
	free(errs);
	free(inc);
}

static void
test_relative_paths(void **state)
{
	struct gw_config *cfg;
	char *errs = load(BASE "error_log = \"logs/error.log\";\naccess_log = \"off\";\n" SITE, &cfg);
	char *want = cg_printf("%s/logs/error.log", dir);

	assert_string_equal(errs, "");
	assert_string_equal(cfg->raw.error_log, want);
	assert_string_equal(cfg->raw.access_log, "off");
	gw_config_free(cfg);
	free(errs);
	free(want);
}

/* -p prints a configuration that loads back to the same printout. */
static void
test_print_round_trip(void **state)
{
	struct gw_config *cfg, *again;
	char *errs, *p1 = NULL, *p2 = NULL;
	size_t n1 = 0, n2 = 0;
	FILE *f;

	errs = load("workers = 2;\nbackends = { app = { connect = [ \"unix:/a\", \"tcp:127.0.0.1:9000\" ];"
	    " params = { A = \"x\\\"y\"; }; }; };\n" SITE, &cfg);
	assert_string_equal(errs, "");
	free(errs);
	f = open_memstream(&p1, &n1);
	gw_config_print(cfg, f);
	fclose(f);
	errs = load(p1, &again);
	if (strcmp(errs, "") != 0)
		fail_msg("-p output does not load:\n%s\n%s", errs, p1);
	f = open_memstream(&p2, &n2);
	gw_config_print(again, f);
	fclose(f);
	/* The first line names the file; the rest must match. */
	assert_string_equal(strchr(p1, '\n'), strchr(p2, '\n'));
	assert_non_null(strstr(p1, "max_body_size = 10485760;"));
	assert_non_null(strstr(p1, "A = \"x\\\"y\";"));
	gw_config_free(cfg);
	gw_config_free(again);
	free(errs);
	free(p1);
	free(p2);
}

int
main(void)
{
	char *rm;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_dangling_backend),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_parse_error),
		cmocka_unit_test(test_include),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_print_round_trip),
	};
	int rc;

	if (mkdtemp(dir) == NULL)
		return 1;
	gnutls_global_init();
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rm = cg_printf("rm -rf '%s'", dir);
	if (system(rm) != 0)
		rc = 1;
	free(rm);
	return rc;
}
