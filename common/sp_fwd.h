/* sp_fwd.h: the port-forward protocol between sp-preview (preview/) and
 * the sandbox helper (helper/hd_ports.c). Only root can enter a sandbox's
 * network namespace, so the unprivileged preview proxy asks the helper for
 * a TCP socket connected to 127.0.0.1:<port> (or [::1]:<port>) inside one
 * sandbox and gets it as an fd; the bytes then never pass the helper.
 *
 * Transport: a SOCK_SEQPACKET unix socket, FWD_SOCKET_NAME in the run
 * directory ($SP_STATE_DIR/run). The helper accepts only peers running as
 * root or as the owner of the run directory (SO_PEERCRED). One message
 * each way per request, in order:
 *
 *   "info <sandbox id>"          → "0 <owner> <public 0|1> <paused 0|1>"
 *   "connect <sandbox id> <port>" → "0" with the socket (SCM_RIGHTS; its
 *                                   connect may still be in progress)
 *   either, on failure           → "<sp_status number> <message>":
 *                                   SP_E_NOT_FOUND (no such sandbox here),
 *                                   SP_E_PAUSED, SP_E_BAD_GATEWAY (nothing
 *                                   listens on the port), SP_E_INVALID_
 *                                   ARGUMENT, SP_E_INTERNAL.
 *
 * The helper checks the sandbox and its namespace on every request; it
 * keeps no state per client. */
#ifndef SP_FWD_H
#define SP_FWD_H

#define FWD_SOCKET_NAME "sp-helperd-ports.sock"
#define FWD_MSG_MAX     256 /* the longest message either way */

#endif
