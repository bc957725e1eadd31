/*
 * fuzz_conf.c: the configuration reader (common/conf.c) over arbitrary
 * libconfig text against the gateway's full key tables: every type check,
 * default and unknown-key path, then -p printing and freeing.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cg_errors errs = { NULL, 0 };
	struct gw_conf raw;
	config_t cfg;
	char *text;
	FILE *devnull;

	if (size > 65536)
		return 0;
	text = malloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	config_init(&cfg);
	if (config_read_string(&cfg, text) == CONFIG_TRUE) {
		memset(&raw, 0, sizeof(raw));
		cg_conf_parse(config_root_setting(&cfg), &gw_conf_schema, &raw, "/etc/certgate", &errs);
		devnull = fopen("/dev/null", "w");
		if (devnull != NULL) {
			cg_conf_print(devnull, &gw_conf_schema, &raw, 0);
			fclose(devnull);
		}
		cg_conf_free(&gw_conf_schema, &raw);
	}
	config_destroy(&cfg);
	cg_errors_free(&errs);
	free(text);
	return 0;
}
