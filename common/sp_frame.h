/* sp_frame.h: the framings of a streamed answer. A framing is one struct
 * of callbacks (curl's Curl_handler, one per protocol): its name, the
 * Content-Type of the answer, and functions that write the answer's parts
 * into a bounded sp_buf: what comes before the first event, one event, a
 * keepalive, the end after an error, and the normal end. Whoever streams
 * (the SSE relay, a handler) holds a `const sp_frame *` and never writes
 * framing bytes itself.
 *
 * An event is (id, type, data): id is the stream position ("<ms>-<seq>",
 * or NULL for none), type the event's name, data one JSON text. What each
 * framing puts on the wire:
 *
 *   sse        "id: <id>\n" (when there is one) "event: <type>\n"
 *              "data: <data>\n\n"; keepalive ": hb\n\n"; no preamble and
 *              no trailer (an EventSource resumes with Last-Event-ID).
 *   ndjson     {"id":"<id>","type":"<type>","data":<data>}\n ("id" left
 *              out when there is none); keepalive {"type":"keepalive"}\n;
 *              error end {"error":{"code","message"}}\n; no trailer.
 *   lines      the data itself as one line: <data>\n (id and type are
 *              checked, not written: the data is the whole object, as a
 *              mapping made it, e.g. E2B's code interpreter lines);
 *              keepalive {"type":"keepalive"}\n; error end
 *              {"type":"error","name":"<code>","value":"<message>",
 *              "traceback":""}\n; no trailer.
 *   connect    Connect streaming envelopes (JSON codec): flag byte 0x00,
 *              4-byte big-endian length, the message = data (id and type
 *              are not on the wire); keepalive the message {}; end: flag
 *              0x02 with {} or {"error":{"code","message"}}, the code one
 *              of Connect's (frame_connect_code).
 *   websocket  RFC 6455 server frames (FIN set, never masked): an event is
 *              a text frame holding the data (id and type are not on the
 *              wire: the data is the whole message, a WebSocket client
 *              does not resume); keepalive an empty ping; end a close frame with
 *              status 1000; error end a text frame {"error":{...}} then a
 *              close frame with status 1011.
 *
 * Contract of every writer: it appends to b and returns 0, or returns -1
 * and leaves b as it was (nothing half-written) when an argument is
 * refused or b's maximum would be passed. Arguments: id is NULL, "" or
 * 1..FRAME_ID_MAX bytes of [A-Za-z0-9_.:-]; type 1..FRAME_TYPE_MAX bytes of
 * [A-Za-z0-9_.-]; data 1..FRAME_DATA_MAX bytes of valid UTF-8 with no NUL
 * and no control byte but tab (sse and ndjson: no CR or LF either; connect
 * and websocket allow them, JSON whitespace). The data is not parsed: the
 * caller vouches that it is JSON. An error code is [a-z_]{1,32} (a code of
 * sp_status.c); a message any bytes (escaped, invalid UTF-8 replaced). */
#ifndef SP_FRAME_H
#define SP_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "sp_buf.h"

#define FRAME_ID_MAX   64
#define FRAME_TYPE_MAX 64
/* The largest data of one event (a Connect message's length has to fit
 * in readers' default limits; no stream here comes near it). */
#define FRAME_DATA_MAX (16u * 1024 * 1024)
/* WebSocket opcodes of RFC 6455 §5.2 that a server sends. */
#define FRAME_WS_TEXT  0x1
#define FRAME_WS_CLOSE 0x8
#define FRAME_WS_PING  0x9
/* Longest WebSocket frame header: 2 bytes + a 64-bit length. */
#define FRAME_WS_HDR_MAX 10

typedef struct sp_frame {
    const char *name;         /* "sse", "ndjson", "lines", "connect",
                                 "websocket" */
    const char *content_type; /* of the answer; NULL for websocket (an
                                 upgraded connection has none) */
    /* Bytes before the first event (none of the four has any yet). */
    int (*preamble)(sp_buf *b);
    /* One event; see the argument rules above. */
    int (*event)(sp_buf *b, const char *id, const char *type, const char *data,
                 size_t dlen);
    /* A keepalive that every reader skips. */
    int (*heartbeat)(sp_buf *b);
    /* The end of a stream that failed: code and message as in the JSON
     * error envelope. */
    int (*error_end)(sp_buf *b, const char *code, const char *message);
    /* The end of a stream that completed. */
    int (*end)(sp_buf *b);
} sp_frame;

extern const sp_frame frame_sse;
extern const sp_frame frame_ndjson;
extern const sp_frame frame_lines;
extern const sp_frame frame_connect;
extern const sp_frame frame_websocket;

/* The framing called name ("sse", ...), or NULL. Static storage. */
const sp_frame *frame_find(const char *name);

/* The Connect error code (connectrpc.com/docs/protocol, "Error Codes")
 * for a code of sp_status.c: a Connect code is itself, the others map
 * (rate_limited -> resource_exhausted, ...), anything else is "unknown".
 * Static storage. */
const char *frame_connect_code(const char *code);

/* Write the header of a server-to-client WebSocket frame (FIN, opcode,
 * unmasked, 7-, 16- or 64-bit length) for a payload of len bytes into out
 * (FRAME_WS_HDR_MAX bytes). Returns the header's length: 2, 4 or 10. */
size_t frame_ws_header(unsigned char out[FRAME_WS_HDR_MAX], unsigned opcode,
                       uint64_t len);

#endif
