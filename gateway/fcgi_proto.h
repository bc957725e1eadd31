/*
 * fcgi_proto.h: the FastCGI 1.0 wire format and the CGI response header,
 * as pure functions over buffers (no sockets): record framing, name-value
 * pairs, the record stream coming back from an application, and the CGI
 * header block that starts its STDOUT. Everything here parses untrusted
 * bytes (the application's output) and is fuzzed (tests/fuzz/fuzz_fcgi.c).
 */
#ifndef GW_FCGI_PROTO_H
#define GW_FCGI_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define GW_FCGI_VERSION       1
#define GW_FCGI_HEADER_LEN    8
#define GW_FCGI_MAX_CONTENT   65535

enum gw_fcgi_type {
	GW_FCGI_BEGIN_REQUEST = 1,
	GW_FCGI_ABORT_REQUEST = 2,
	GW_FCGI_END_REQUEST = 3,
	GW_FCGI_PARAMS = 4,
	GW_FCGI_STDIN = 5,
	GW_FCGI_STDOUT = 6,
	GW_FCGI_STDERR = 7,
	GW_FCGI_DATA = 8,
	GW_FCGI_GET_VALUES = 9,
	GW_FCGI_GET_VALUES_RESULT = 10,
	GW_FCGI_UNKNOWN_TYPE = 11,
};

enum gw_fcgi_role {
	GW_FCGI_RESPONDER = 1,
	GW_FCGI_AUTHORIZER = 2,
	GW_FCGI_FILTER = 3,
};

/* protocolStatus of END_REQUEST */
enum gw_fcgi_pstatus {
	GW_FCGI_REQUEST_COMPLETE = 0,
	GW_FCGI_CANT_MPX_CONN = 1,
	GW_FCGI_OVERLOADED = 2,
	GW_FCGI_UNKNOWN_ROLE = 3,
};

/* ---- encoding (certgate -> application) ---- */

/* Writes a complete BEGIN_REQUEST record (16 bytes) into out. */
size_t gw_fcgi_begin_request(uint8_t out[16], uint16_t id, enum gw_fcgi_role role,
                             int keep_conn);

/* Bytes gw_fcgi_nv_encode() writes for one pair. */
size_t gw_fcgi_nv_len(size_t nlen, size_t vlen);
/* Encodes one name-value pair (1- or 4-byte lengths as the spec says) into
 * out, which holds at least gw_fcgi_nv_len() bytes; returns bytes written.
 * Lengths must be < 2^31. */
size_t gw_fcgi_nv_encode(uint8_t *out, const void *name, size_t nlen,
                         const void *value, size_t vlen);

/* Bytes gw_fcgi_frame() writes for len bytes of stream data. */
size_t gw_fcgi_frame_len(size_t len);
/* Wraps len bytes of a stream (PARAMS, STDIN ...) into as many records as
 * needed (content <= 65535 bytes each, padded to a multiple of 8); len == 0
 * writes the single empty record that ends a stream. out holds at least
 * gw_fcgi_frame_len(len) bytes; returns bytes written. */
size_t gw_fcgi_frame(uint8_t *out, enum gw_fcgi_type type, uint16_t id,
                     const void *data, size_t len);

/* ---- decoding (application -> certgate) ---- */

/* Decodes one name-value pair at in[*off]; on success advances *off and
 * returns 0 with the spans pointing into in; -1 when truncated or malformed. */
int gw_fcgi_nv_decode(const uint8_t *in, size_t len, size_t *off,
                      const uint8_t **name, size_t *nlen,
                      const uint8_t **value, size_t *vlen);

enum gw_fcgi_ev {
	GW_FCGI_EV_NONE,	/* all input consumed; need more bytes */
	GW_FCGI_EV_STDOUT,	/* data/len: a piece of STDOUT (never empty) */
	GW_FCGI_EV_STDERR,	/* data/len: a piece of STDERR (never empty) */
	GW_FCGI_EV_END,		/* END_REQUEST: app_status, protocol_status */
	GW_FCGI_EV_ERROR,	/* error: a static description; the stream is dead */
	GW_FCGI_EV__MAX
};
extern const char *const gw_fcgi_ev_names[GW_FCGI_EV__MAX];

/* Incremental record-stream parser: records may arrive split anywhere.
 * Zero it (or call gw_fcgi_parser_init) before use. */
struct gw_fcgi_parser {
	int state;		/* internal */
	uint8_t hdr[GW_FCGI_HEADER_LEN];
	size_t hdr_len;
	uint8_t type;
	uint16_t id;
	size_t content_left;
	size_t padding_left;
	uint8_t body[8];	/* END_REQUEST body being collected */
	size_t body_len;
};

struct gw_fcgi_event {
	enum gw_fcgi_ev type;
	const uint8_t *data;	/* STDOUT/STDERR: points into the input buffer */
	size_t len;
	uint32_t app_status;
	uint8_t protocol_status;
	const char *error;
};

void gw_fcgi_parser_init(struct gw_fcgi_parser *p);
/* Consumes bytes of buf until it has one event to report (or the input is
 * exhausted: GW_FCGI_EV_NONE); returns the number of bytes consumed. Call
 * again with the rest. Records for a request id other than `id`, a version
 * other than 1, or an END_REQUEST of the wrong size are errors; empty
 * STDOUT/STDERR records and GET_VALUES_RESULT/UNKNOWN_TYPE records are
 * skipped silently. After EV_END or EV_ERROR the parser must be re-inited. */
size_t gw_fcgi_parse(struct gw_fcgi_parser *p, uint16_t id,
                     const uint8_t *buf, size_t len, struct gw_fcgi_event *ev);

/* ---- the CGI response header (RFC 3875 section 6) ---- */

#define GW_CGI_MAX_HEADERS 100

struct gw_span {
	const char *p;
	size_t len;
};

struct gw_cgi_header {
	struct gw_span name, value;	/* value without surrounding blanks */
};

struct gw_cgi_response {
	int status;			/* from Status:, else 302 with an absolute
					   Location, else 200 */
	struct gw_span reason;		/* from Status: after the code; may be empty */
	struct gw_cgi_header headers[GW_CGI_MAX_HEADERS];	/* in order, Status excluded */
	size_t nheaders;
	int64_t content_length;		/* from Content-Length:, -1 when absent */
	size_t head_len;		/* bytes of buf the header block used,
					   blank line included */
};

/* Parses the header block at the start of buf (lines ending in LF or CRLF,
 * ended by an empty line). Returns 1 when complete (r filled, spans point
 * into buf), 0 when more bytes are needed, -1 when malformed: a bad name
 * (not an RFC 9110 token), a value with CR, NUL or other control bytes
 * (TAB allowed), a line without a colon, a bad Status (not 3 digits in
 * 100..599), a bad or repeated differing Content-Length, more than
 * GW_CGI_MAX_HEADERS headers. The caller bounds len. */
int gw_cgi_parse(const char *buf, size_t len, struct gw_cgi_response *r);

#endif
