#ifndef SIXTEEN_CZLIB_SHIM_H
#define SIXTEEN_CZLIB_SHIM_H

/*
 * The system zlib (Debian's zlib1g-dev), for the load generator's HdrHistogram
 * log: the V2 compressed histogram encoding wraps its payload in a zlib stream
 * (RFC 1950). libz.a links into the static binary as libz.so does into the
 * others.
 *
 * inflateInit is a macro (it passes the header's version and the size of
 * z_stream to inflateInit_), so Swift cannot call it: it is wrapped here.
 */

#include <zlib.h>

static inline int sixteen_inflate_init(z_stream *stream) { return inflateInit(stream); }

#endif
