/* transfer.h: what session.c (one transfer at a time, in place) and multi.c (many at once, on
 * the curl multi interface) share: the session's options and one transfer's life. */
#ifndef LOGHAUL_TRANSFER_H
#define LOGHAUL_TRANSFER_H

#include <curl/curl.h>

#include "loghaul.h"

#define LH_SESSION_MT "loghaul.session"

/* core.session: its own easy handle (connections kept alive) and the options every request
 * on it gets, applied again after each curl_easy_reset. */
typedef struct {
    CURL *easy;
    /* busy: inside its own request. A close (close(), __close, or __gc called by hand) that
     * comes from a callback of that request is deferred to the end of it (close_pending):
     * curl_easy_cleanup inside curl_easy_perform would free the handle under libcurl. */
    int busy, close_pending;
    long timeout_ms, connect_timeout_ms, low_speed_limit, low_speed_time, max_redirects;
    curl_off_t max_body;
    int insecure, follow_redirects;
    char *ca_file, *proxy, *user_agent;
    /* the last answer's body buffer, handed to the next request: a cursor loop then fills the
     * same memory page after page instead of growing (and faulting in) a new one each time */
    char *spare;
    size_t spare_cap;
} lh_session_t;

typedef struct lh_xfer lh_xfer;

/* session.c: the open session at idx; raises on anything else or a closed one. */
lh_session_t *lh_check_session(lua_State *L, int idx);

/* Reads the request table at stack index 2 (index 1 is the session) into a transfer on easy
 * with the options of s, and pushes the transfer userdata (which must stay referenced until
 * lh_xfer_finish). Returns 0 when it is ready to perform; else 2 after pushing nil, err (refused
 * before sending). Raises on programming errors. */
int lh_xfer_prepare(lua_State *L, lh_session_t *s, CURL *easy, lh_xfer **out);
/* The state whose stack the progress callback runs on (the caller of perform or multi:wait). */
void lh_xfer_bind(lh_xfer *x, lua_State *L);
CURL *lh_xfer_easy(const lh_xfer *x);
/* After a transfer ended with CURLE_OK: 1 when it set up the next hop of a redirect the
 * transfer follows itself (perform again), else 0. */
int lh_xfer_next_hop(lh_xfer *x, long max_redirects);
/* After libcurl has returned rc: pushes the result (1) or nil, err (2) and releases the
 * transfer; its body buffer goes to s (the session it ran for; NULL: freed) for the next one. */
int lh_xfer_finish(lua_State *L, lh_xfer *x, CURLcode rc, lh_session_t *s);
/* Releases a transfer that will not be finished (removed from its multi handle first). */
void lh_xfer_abandon(lua_State *L, lh_xfer *x);
/* The transfer userdata's metatable. */
void lh_xfer_register(lua_State *L);

#endif
