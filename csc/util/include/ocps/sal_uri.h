/*
 * sal_uri.h - file:// URIs of local paths, byte for byte as Python's
 * pathlib.Path.as_uri() gives them (salobj's configuration URL, the
 * job_result's output and log URIs).
 */
#ifndef SAL_URI_H
#define SAL_URI_H

#include <stddef.h>

/* "file://" + path into out (outlen > 0 bytes, always NUL-terminated):
 * every byte but ASCII letters, digits, "-._~" and "/" percent-encoded
 * (urllib's quote with safe "/"). A path too long for out is cut at a
 * whole byte or escape. Returns 0, or -1 when it was cut. */
int sal_file_uri(const char *path, char *out, size_t outlen);

#endif
