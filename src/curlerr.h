/* curlerr.h: naming and classifying libcurl's result codes. */
#ifndef LOGHAUL_CURLERR_H
#define LOGHAUL_CURLERR_H

#include <curl/curl.h>

/* The enum's own name, e.g. "CURLE_OPERATION_TIMEDOUT". */
const char *lh_curl_code_name(CURLcode rc);
/* One of "timeout", "tls", "invalid", "io", "aborted", "http", "network". */
const char *lh_curl_code_kind(CURLcode rc);

#endif
