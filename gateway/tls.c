/*
 * tls.c: GnuTLS server sessions: one per TLS connection, with the site's
 * credentials chosen from the SNI name after the ClientHello, the
 * configured priorities, session tickets, non-blocking handshakes, and
 * the read side of the transport.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "gateway/gateway_int.h"

/* After the ClientHello: the SNI name picks the site, and with it the
 * certificate the server presents. */
static int
post_client_hello(gnutls_session_t s)
{
	struct gw_conn *c = gnutls_session_get_ptr(s);
	char name[256];
	size_t len = sizeof(name);
	unsigned type;
	int rc;

	/* A renegotiation we started keeps its site and its request. */
	if (c->state == GW_CONN_REAUTH)
		return 0;

	rc = gnutls_server_name_get(s, name, &len, &type, 0);
	if (rc == 0 && type == GNUTLS_NAME_DNS)
		c->site = gw_site_for_host(c->lst, name, len);
	else
		c->site = c->lst->default_site;
	if (c->site->cred == NULL)
		return GNUTLS_E_NO_CERTIFICATE_FOUND;
	rc = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, c->site->cred);
	if (rc < 0) {
		cg_log(CG_LOG_ERROR, c->id, "gnutls_credentials_set: %s (%d)", gnutls_strerror(rc), rc);
		return rc;
	}
	switch (c->site->client_auth) {
	case GW_CA_REQUEST:
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUEST);
		break;
	case GW_CA_REQUIRE:
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
		break;
	default:
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_IGNORE);
		break;
	}
	return 0;
}

/* During the handshake, once the client has proven its key: certauth
 * decides. Under tls_client_auth "require" a bad certificate ends the
 * handshake with an alert; otherwise the policies answer with 403.x. */
int
gw_tls_verify(gnutls_session_t s)
{
	struct gw_conn *c = gnutls_session_get_ptr(s);
	enum ca_verdict v = gw_auth_verify(c);

	if (c->site->client_auth == GW_CA_REQUIRE && v != CA_VERDICT_OK)
		return GNUTLS_E_CERTIFICATE_ERROR;
	return 0;
}

/*
 * GnuTLS reads a record in two reads, its 5-byte header, then its body:
 * with its own transport, two recv(2) for each request on a keep-alive
 * connection. certgate's pull function reads what the socket has, up to a
 * whole record, into the connection's tin buffer in one call and serves
 * GnuTLS from there. Bytes held in tin raise no event on the socket:
 * whoever waits for input asks gw_tls_pending() first. Writes keep
 * GnuTLS's own transport (one sendmsg per record or set of records).
 */
#define TLS_READ_AHEAD (16384 + 2048)	/* a record's header, body and tag */

static ssize_t
tls_pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct gw_conn *c = p;
	size_t avail = cg_buf_avail(&c->tin);
	ssize_t n;

	if (avail == 0) {
		do {
			n = recv(c->fd, cg_buf_reserve(&c->tin, TLS_READ_AHEAD), TLS_READ_AHEAD, 0);
		} while (n < 0 && errno == EINTR);
		if (n <= 0) {
			gnutls_transport_set_errno(c->tls, n < 0 ? errno : 0);
			return n;
		}
		c->tin.len += (size_t)n;
		avail = (size_t)n;
	}
	if (len > avail)
		len = avail;
	memcpy(data, cg_buf_head(&c->tin), len);
	cg_buf_consume(&c->tin, len);
	return (ssize_t)len;
}

/* GnuTLS asks this only with a timeout set (certgate sets none: its timers
 * bound every wait), but answers must be right all the same. */
static int
tls_pull_timeout(gnutls_transport_ptr_t p, unsigned ms)
{
	struct gw_conn *c = p;
	struct pollfd pfd = { .fd = c->fd, .events = POLLIN };

	if (cg_buf_avail(&c->tin) > 0)
		return 1;
	return poll(&pfd, 1, (int)ms);
}

size_t
gw_tls_pending(struct gw_conn *c)
{
	return gnutls_record_check_pending(c->tls) + cg_buf_avail(&c->tin);
}

int
gw_tls_session_new(struct gw_conn *c)
{
	static const gnutls_datum_t alpn = { (unsigned char *)"http/1.1", 8 };
	const struct gw_config *cfg = gw_worker->cfg;
	int rc;

	/* Post-handshake authentication must be allowed from the start, and
	 * makes GnuTLS keep the handshake's transcript for the connection's
	 * life (~5 KiB): only when a site has tls_client_auth "deferred".
	 * GnuTLS 3.7 cannot issue a TLS 1.2 ticket inside a renegotiation (it
	 * fails the handshake), so deferred sites do without TLS 1.2 tickets;
	 * TLS 1.3 tickets are unaffected. */
	if ((rc = gnutls_init(&c->tls, GNUTLS_SERVER | GNUTLS_NONBLOCK | GNUTLS_NO_SIGNAL |
	    (cfg->any_deferred ? GNUTLS_POST_HANDSHAKE_AUTH | GNUTLS_NO_TICKETS_TLS12 : 0))) < 0)
		goto fail;
	gnutls_session_set_ptr(c->tls, c);
	if ((rc = gnutls_priority_set(c->tls, cfg->priority)) < 0)
		goto fail;
	/* Credentials of the default site until the SNI name is known. */
	c->site = c->lst->default_site;
	if (c->site->cred != NULL &&
	    (rc = gnutls_credentials_set(c->tls, GNUTLS_CRD_CERTIFICATE, c->site->cred)) < 0)
		goto fail;
	gnutls_handshake_set_post_client_hello_function(c->tls, post_client_hello);
	gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_IGNORE);
	if (cfg->raw.tls.session_tickets &&
	    (rc = gnutls_session_ticket_enable_server(c->tls, gw_config_ticket_key(cfg))) < 0)
		goto fail;
	if ((rc = gnutls_alpn_set_protocols(c->tls, &alpn, 1, GNUTLS_ALPN_SERVER_PRECEDENCE)) < 0)
		goto fail;
	gnutls_handshake_set_timeout(c->tls, 0);	/* our timer bounds it */
	gnutls_transport_set_ptr2(c->tls, c, (gnutls_transport_ptr_t)(intptr_t)c->fd);
	gnutls_transport_set_pull_function(c->tls, tls_pull);
	gnutls_transport_set_pull_timeout_function(c->tls, tls_pull_timeout);
	return 0;
fail:
	cg_log(CG_LOG_ERROR, c->id, "TLS session setup: %s (%d)", gnutls_strerror(rc), rc);
	return -1;
}

int
gw_tls_handshake(struct gw_conn *c)
{
	int rc;

	do {
		rc = gnutls_handshake(c->tls);
	} while (rc == GNUTLS_E_INTERRUPTED);
	if (rc == GNUTLS_E_SUCCESS)
		return 1;
	if (rc == GNUTLS_E_AGAIN)
		return 0;
	if (gnutls_error_is_fatal(rc) == 0) {
		/* e.g. a warning alert: keep going */
		cg_log(CG_LOG_DEBUG, c->id, "TLS handshake: %s (%d)", gnutls_strerror(rc), rc);
		return 0;
	}
	/* A peer that connects and hangs up (a port probe) is not news. */
	cg_log(rc == GNUTLS_E_PREMATURE_TERMINATION ? CG_LOG_DEBUG : CG_LOG_INFO, c->id,
	    "TLS handshake with %s failed: %s (%d)", c->peer_addr, gnutls_strerror(rc), rc);
	/* The client learns why (e.g. certificate_required, bad_certificate);
	 * best effort on a non-blocking socket. */
	gnutls_alert_send_appropriate(c->tls, rc);
	return -1;
}

int
gw_tls_reauth_start(struct gw_conn *c)
{
	gnutls_protocol_t v = gnutls_protocol_get_version(c->tls);

	if (v == GNUTLS_TLS1_3) {
		if (!(gnutls_session_get_flags(c->tls) & GNUTLS_SFLAGS_POST_HANDSHAKE_AUTH))
			return -1;	/* the client did not offer post_handshake_auth */
		c->reauth_tls12 = 0;
	} else if (v == GNUTLS_TLS1_2) {
		if (!gnutls_safe_renegotiation_status(c->tls))
			return -1;	/* never renegotiate without RFC 5746 */
		c->reauth_tls12 = 1;
		c->reauth_sent = 0;
	} else {
		return -1;
	}
	/* REQUEST, not REQUIRE: a client without a certificate still gets its
	 * 403 page (a failed REQUIRE would end the session). */
	gnutls_certificate_server_set_request(c->tls, GNUTLS_CERT_REQUEST);
	return 0;
}

int
gw_tls_reauth_step(struct gw_conn *c)
{
	int rc;

	if (c->reauth_tls12 && !c->reauth_sent) {
		rc = gnutls_rehandshake(c->tls);
		if (rc == GNUTLS_E_AGAIN || rc == GNUTLS_E_INTERRUPTED)
			return 0;
		if (rc < 0)
			goto fail;
		c->reauth_sent = 1;
	}
	rc = c->reauth_tls12 ? gnutls_handshake(c->tls) : gnutls_reauth(c->tls, 0);
	switch (rc) {
	case GNUTLS_E_SUCCESS:
		return 1;
	case GNUTLS_E_AGAIN:
	case GNUTLS_E_INTERRUPTED:
		return 0;
	case GNUTLS_E_GOT_APPLICATION_DATA:
		return rc;
	case GNUTLS_E_WARNING_ALERT_RECEIVED:
		/* A TLS 1.2 client that declines renegotiation says so. */
		if (gnutls_alert_get(c->tls) == GNUTLS_A_NO_RENEGOTIATION)
			return 1;
		return 0;
	default:
		break;
	}
fail:
	cg_log(CG_LOG_INFO, c->id, "deferred certificate request failed: %s (%d)",
	    gnutls_strerror(rc), rc);
	return -1;
}

const char *
gw_tls_protocol(gnutls_session_t s)
{
	switch (gnutls_protocol_get_version(s)) {
	case GNUTLS_TLS1_0: return "TLSv1";
	case GNUTLS_TLS1_1: return "TLSv1.1";
	case GNUTLS_TLS1_2: return "TLSv1.2";
	case GNUTLS_TLS1_3: return "TLSv1.3";
	default: return "unknown";
	}
}

/* OpenSSL's names for the TLS 1.2 suites GnuTLS negotiates (mod_ssl prints
 * OpenSSL's); TLS 1.3 names are the same in both. */
static const char *
openssl_cipher_name(const char *iana)
{
	static const struct { const char *iana, *openssl; } names[] = {
		{ "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256" },
		{ "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384" },
		{ "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305" },
		{ "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "ECDHE-RSA-AES128-GCM-SHA256" },
		{ "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "ECDHE-RSA-AES256-GCM-SHA384" },
		{ "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-CHACHA20-POLY1305" },
		{ "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "ECDHE-ECDSA-AES128-SHA256" },
		{ "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", "ECDHE-RSA-AES128-SHA256" },
		{ "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", "DHE-RSA-AES128-GCM-SHA256" },
		{ "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", "DHE-RSA-AES256-GCM-SHA384" },
		{ "TLS_RSA_WITH_AES_128_GCM_SHA256", "AES128-GCM-SHA256" },
		{ "TLS_RSA_WITH_AES_256_GCM_SHA384", "AES256-GCM-SHA384" },
	};
	size_t i;

	for (i = 0; i < CG_NELEM(names); i++)
		if (strcmp(names[i].iana, iana) == 0)
			return names[i].openssl;
	return iana;
}

const char *
gw_tls_cipher(gnutls_session_t s)
{
	const char *name = gnutls_ciphersuite_get(s);

	return name ? openssl_cipher_name(name) : gnutls_cipher_get_name(gnutls_cipher_get(s));
}
