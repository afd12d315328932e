/*
 * sal_uri.c - file:// URIs of local paths (see sal_uri.h).
 */
#include "ocps/sal_uri.h"

#include <stdio.h>
#include <string.h>

static int uri_keeps(unsigned char b)
{
    return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9') ||
           (b != '\0' && strchr("-._~/", b) != NULL);
}

int sal_file_uri(const char *path, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    static const char scheme[] = "file://";
    if (outlen < sizeof scheme) {
        if (outlen > 0) {
            out[0] = '\0';
        }
        return -1;
    }
    memcpy(out, scheme, sizeof scheme);
    size_t o = sizeof scheme - 1;
    const unsigned char *p = (const unsigned char *)path;
    for (; *p != '\0'; p++) {
        size_t need = uri_keeps(*p) ? 1 : 3;
        if (o + need >= outlen) {
            break;
        }
        if (need == 1) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 0xF];
        }
    }
    out[o] = '\0';
    return *p == '\0' ? 0 : -1;
}
