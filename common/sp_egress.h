/* sp_egress.h: where outbound requests made on a user's behalf may go.
 * The helper and the handlers run on the host, so a URL a user gives
 * (an import's urls) must not reach this host, its private networks or
 * link-local services: the same non-public ranges the sandboxes' egress
 * filter rejects (helper/sbx_net.c), and every address of this host. A
 * name is resolved once and the connection pinned to the address checked
 * (CURLOPT_RESOLVE), so a second lookup cannot answer differently. */
#ifndef SP_EGRESS_H
#define SP_EGRESS_H

#include <stddef.h>

#define EGRESS_PIN_MAX 600

/* Check url (http or https only, no user info): NULL and the pin
 * "host:port:address" for curl in pin, or the rule it breaks
 * ("url_scheme", "url_malformed", "url_unresolved", "url_not_public").
 * Static storage. */
const char *egress_url(const char *url, char *pin, size_t pinlen);

/* The form of url only, as egress_url checks it but without resolving:
 * NULL, or "url_scheme" or "url_malformed". Static storage. */
const char *egress_form(const char *url);

#endif
