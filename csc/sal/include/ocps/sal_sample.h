/*
 * sal_sample.h - generic operations on topic samples, driven by the field
 * tables salgen writes (sal_interface.h). A sample is the idlc struct of
 * its topic; unbounded strings are malloc'd `char *` owned by the sample.
 *
 * A sample from sal_sample_new, sal_sample_dup or sal_sample_new_lent also
 * carries, after the struct (sal_sample_size), the whole private_identity:
 * the struct's field is the DDS IDL's string<128> (salobj 7), while Kafka's
 * is an unbounded Avro string (salobj 8) of which SAL_IDENTITY_MAX bytes are
 * kept. The runtime writes and reads only such samples (never a struct of
 * the caller's own).
 */
#ifndef SAL_SAMPLE_H
#define SAL_SAMPLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ocps/sal_interface.h"

/* Bytes a sample of `topic` takes: the struct, then the whole identity
 * (for a transport that reads into memory of its own: DDS). */
size_t sal_sample_size(const sal_topic_info *topic);

/* Allocate a zeroed sample of `topic` with every unbounded string set to "".
 * Returns NULL on allocation failure. Free with sal_sample_free. */
void *sal_sample_new(const sal_topic_info *topic);

/* Free a sample from sal_sample_new/sal_sample_dup (NULL is fine). */
void sal_sample_free(const sal_topic_info *topic, void *sample);

/* Free only the strings a sample owns and zero the sample (for samples in
 * storage the caller owns, of sal_sample_size bytes). */
void sal_sample_clear(const sal_topic_info *topic, void *sample);

/* Deep copy of a sample; NULL on allocation failure. */
void *sal_sample_dup(const sal_topic_info *topic, const void *sample);

/* Do two samples have equal user (non-private) fields? */
bool sal_sample_user_equal(const sal_topic_info *topic, const void *a, const void *b);

/* Find a field by name; NULL if the topic has none. */
const sal_field_info *sal_topic_field(const sal_topic_info *topic, const char *name);

/* Set a string field (copying value). Fails with a message if the field is
 * not a string, the value exceeds its bound or is not valid UTF-8. */
int sal_sample_set_string(const sal_topic_info *topic, void *sample, const char *field, const char *value,
                          char *err, size_t errlen);

/* Read a string field; NULL if `field` is not a string field
 * (private_identity: the whole one, sal_sample_identity). */
const char *sal_sample_get_string(const sal_topic_info *topic, const void *sample, const char *field);

/* Set a numeric or boolean field (element `i` of an array) from a double /
 * int64; fails if the field is missing, a string, or the value is out of
 * range for its type. */
int sal_sample_set_number(const sal_topic_info *topic, void *sample, const char *field, size_t i,
                          double value, char *err, size_t errlen);

/* Element `i` of a numeric/boolean field as a double (0 if absent). */
double sal_sample_get_number(const sal_topic_info *topic, const void *sample, const char *field, size_t i);

/* Shorthands for int32 fields (salIndex, private_seqNum, ack, ...). */
int32_t sal_sample_get_i32(const sal_topic_info *topic, const void *sample, const char *field);
void sal_sample_set_i32(const sal_topic_info *topic, void *sample, const char *field, int32_t value);

/* Set a field from text, parsed per its type ("true"/"false"/"1"/"0" for
 * booleans, comma-separated values for arrays). Used by the commander. */
int sal_sample_set_from_text(const sal_topic_info *topic, void *sample, const char *field, const char *text,
                             char *err, size_t errlen);

/* Is `s` valid UTF-8 of at most `max` bytes with no control characters
 * other than those in `allowed` (e.g. "\n\t")? */
bool sal_text_valid(const char *s, size_t max, const char *allowed);

/* The same check; when it fails and `why` is not NULL, `why` says which
 * rule failed and where (byte offsets from 0): "contains control character
 * 0x01 at byte 3", "is not valid UTF-8 at byte 5" or "is longer than N
 * bytes". */
bool sal_text_check(const char *s, size_t max, const char *allowed, char *why, size_t whylen);

/* --- Fields resolved once (sal_topic_field), then used without lookups.
 * A program resolves the fields it uses when it opens and fails there when
 * a release lacks one, instead of reading 0 or writing nothing later. */

/* Set string field f (bounded, valid UTF-8); -EINVAL/-E2BIG with why. */
int sal_field_set_string(const sal_topic_info *topic, const sal_field_info *f, void *sample,
                         const char *value, char *err, size_t errlen);

/* A zeroed sample of `topic` whose unbounded strings point at a shared ""
 * and are only ever lent (sal_field_lend_string), never owned: a sample
 * filled again for every write without allocating strings. NULL on
 * allocation failure. Free it with free(), never with sal_sample_free. */
void *sal_sample_new_lent(const sal_topic_info *topic);

/* As sal_field_set_string, but an unbounded field is pointed at value
 * instead of a copy (a bounded one is copied as before): only for samples
 * from sal_sample_new_lent; value must stay alive and unchanged until the
 * sample has been written, and the field lent "" again afterwards. */
int sal_field_lend_string(const sal_topic_info *topic, const sal_field_info *f, void *sample,
                          const char *value, char *err, size_t errlen);

/* String field f ("" for an unset unbounded string); NULL if f is not a
 * string. For private_identity, the struct's field (at most 128 bytes: use
 * sal_sample_identity for the whole one). */
const char *sal_field_get_string(const sal_field_info *f, const void *sample);

/* Set element i of numeric field f, range-checked for its type. */
int sal_field_set_number(const sal_topic_info *topic, const sal_field_info *f, void *sample, size_t i,
                         double value, char *err, size_t errlen);

/* Element i of numeric field f as a double; 0 for strings or i out of range. */
double sal_field_get_number(const sal_field_info *f, const void *sample, size_t i);

/* v as an int64_t without undefined behaviour: truncated toward zero,
 * NaN gives 0, values beyond the range give INT64_MIN / INT64_MAX. */
int64_t sal_double_to_i64(double v);

/* --- Private fields, at the offsets the generator wrote (no lookups). */

#define SAL_REVCODE_SIZE 9    /* private_revCode: string<8> */
#define SAL_IDENTITY_SIZE 129 /* private_identity in the struct: string<128> (DDS IDL) */
/* Bytes of a whole private_identity a sample and the runtime carry: on
 * Kafka (an unbounded string there) a commander's identity up to this long
 * is sent, read and echoed in acks whole; a CSC refuses a longer one. */
#define SAL_IDENTITY_MAX 1024

/* What a writer puts in the private fields of each sample. */
typedef struct sal_stamp {
    const char *rev_code; /* the topic's revCode for the transport */
    const char *identity; /* e.g. "OCPS:1" */
    double snd_stamp;     /* TAI */
    int32_t origin;       /* pid */
    int32_t index;        /* salIndex (ignored when not indexed) */
    int32_t seqnum;       /* 0: leave private_seqNum as it is */
} sal_stamp;

/* Write every private field (private_rcvStamp is zeroed). */
void sal_sample_stamp(const sal_topic_info *topic, void *sample, const sal_stamp *stamp);

/* salIndex (0 for a component that is not indexed). */
int32_t sal_sample_index(const sal_topic_info *topic, const void *sample);

/* private_seqNum. */
int32_t sal_sample_seqnum(const sal_topic_info *topic, const void *sample);
void sal_sample_set_seqnum(const sal_topic_info *topic, void *sample, int32_t seqnum);

/* private_origin (the writer's pid). */
int32_t sal_sample_origin(const sal_topic_info *topic, const void *sample);

/* private_identity, whole (at most SAL_IDENTITY_MAX bytes: see
 * sal_sample_identity_length). */
const char *sal_sample_identity(const sal_topic_info *topic, const void *sample);

/* The length of private_identity as it was set or read, which is more than
 * SAL_IDENTITY_MAX when sal_sample_identity holds only its first bytes. */
size_t sal_sample_identity_length(const sal_topic_info *topic, const void *sample);

/* Set private_identity from `len` bytes of `value`: the whole one (cut at
 * a character boundary to SAL_IDENTITY_MAX bytes, `len` kept as its
 * length) and the struct's field (cut to 128 bytes, the DDS IDL's bound). */
void sal_sample_set_identity(const sal_topic_info *topic, void *sample, const char *value, size_t len);

/* Is f the topic's private_identity (whose whole value the sample carries
 * beside the struct: sal_sample_identity / sal_sample_set_identity)? */
bool sal_field_is_identity(const sal_topic_info *topic, const sal_field_info *f);

/* Set the whole private_identity from the struct's field: for a transport
 * whose wire carries only that field (DDS), after reading a sample. */
void sal_sample_identity_from_struct(const sal_topic_info *topic, void *sample);

/* private_sndStamp (TAI). */
double sal_sample_snd_stamp(const sal_topic_info *topic, const void *sample);

/* Set private_rcvStamp (reader-local TAI of reading). */
void sal_sample_set_rcv_stamp(const sal_topic_info *topic, void *sample, double tai);

#endif
