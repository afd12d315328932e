/*
 * yaml_json.h - read a YAML document into a jansson value the way Python's
 * yaml.safe_load (PyYAML 6, YAML 1.1 resolver) reads it, so that a CSC
 * configuration file means the same to this CSC as to salobj.
 *
 * Syntax is parsed by libyaml's event parser (as PyYAML's CSafeLoader does);
 * the composing and constructing steps are PyYAML's, rewritten in C:
 *
 * - Plain scalars are resolved with PyYAML's implicit resolvers: null (~,
 *   null, Null, NULL, empty), bool (yes/no/true/false/on/off in three
 *   casings), int (decimal with _, 0b, 0x, leading-0 octal, sexagesimal
 *   190:20:30, sign), float (PyYAML's regex: 1e3 and 1.0e3 stay strings,
 *   6.8523015e+5 and 190:20:30.15 are floats), timestamps; everything else
 *   is a string. Quoted and block scalars are strings.
 * - Explicit tags !!str, !!int, !!float, !!bool, !!null, !!seq, !!map and
 *   !!timestamp convert as PyYAML's SafeConstructor does (e.g. !!int "0o17"
 *   is 15, !!float 1e3 is 1000.0); any other tag is an error.
 * - Anchors and aliases, the merge key << (a mapping or a sequence of
 *   mappings; explicit keys win, earlier mappings of a sequence win over
 *   later ones), duplicate anchors rejected, duplicate keys last-wins.
 * - A stream with a second document is an error, as in safe_load.
 *
 * Known differences from PyYAML (mostly forced by JSON or by safety):
 *
 * - Timestamps become the original text as a JSON string (PyYAML gives a
 *   datetime.date / datetime.datetime); the *_timestamps / _named loaders
 *   also list them, so that validation can refuse them where a string is
 *   wanted, as salobj does. Dates PyYAML cannot construct (month 13, Feb
 *   30, a +24:00 offset...) are errors in both.
 * - Mapping keys must be JSON strings: a non-string scalar key is written
 *   as Python's str() of the value: 1 -> "1", 0x10 -> "16", true -> "True",
 *   null -> "None", 1.5 -> "1.5", 1.0e+16 -> "1e+16"; a timestamp key keeps
 *   its text. So {1: a, "1": b} gives one key "1" (last wins) while Python
 *   keeps two, and {1: a, true: b} gives keys "1" and "True" while Python
 *   (where 1 == True) keeps one. Mappings or sequences as keys are errors
 *   ("found unhashable key"), as in PyYAML.
 * - Integers must fit in 64 bits and floats must be finite (.inf, .nan and
 *   1.0e+999 are errors): jansson cannot hold anything else.
 * - Aliases share the anchored jansson value (json_incref), as Python
 *   shares the object, so changing the result in place changes every
 *   alias of that node (json_deep_copy first to avoid it); a recursive
 *   alias (&a [*a]) is an error since JSON has no cycles.
 * - !!binary, !!omap, !!pairs and !!set (accepted by safe_load) are errors:
 *   they have no JSON form. Tags on a merged mapping are checked (PyYAML
 *   ignores them since it never constructs that node).
 * - Limits: input at most 4 MiB, nesting at most 128 collections deep
 *   (counting through aliases), at most 1,000,000 nodes counting every
 *   alias expansion (defeats "billion laughs"). PyYAML has none of these.
 * - Syntax is libyaml's: in rare corners it differs from PyYAML's pure
 *   Python scanner (libyaml accepts some tabs PyYAML refuses, and refuses
 *   surrogate escapes such as "\ud800" that PyYAML keeps).
 * - Errors are reported when found while parsing, so with several problems
 *   the first one in the text is named (PyYAML parses the whole document
 *   before constructing it).
 */
#ifndef YAML_JSON_H
#define YAML_JSON_H

#include <stddef.h>

#include <jansson.h>

/* Largest input accepted, in bytes. */
#define YAML_JSON_MAX_INPUT (4u * 1024u * 1024u)
/* Deepest nesting of sequences and mappings accepted. */
#define YAML_JSON_MAX_DEPTH 128
/* Most nodes accepted, each alias counting as the nodes it stands for. */
#define YAML_JSON_MAX_NODES 1000000u

/* Parse the first YAML document in text[0..len) like yaml.safe_load. The
 * text need not be NUL-terminated. An empty stream (or only comments) gives
 * json_null(). Returns a new reference (caller json_decref's it), or NULL on
 * error with a message naming line and column (1-based) in err[0..errlen)
 * (err may be NULL when errlen is 0). */
json_t *yaml_json_load(const char *text, size_t len, char *err, size_t errlen);

/* Same, the message starting with name as yaml_json_load_file's starts
 * with the path (for text read from elsewhere, e.g. git show). If
 * timestamps is not NULL (a JSON array), every timestamp value of the
 * result is also appended to it (the same json_t, a new reference), so a
 * validator can tell them from quoted strings as PyYAML's datetimes are
 * told apart (json_schema_validate_timestamps). */
json_t *yaml_json_load_named(const char *text, size_t len, const char *name, json_t *timestamps, char *err,
                             size_t errlen);

/* Same for the file at path (at most YAML_JSON_MAX_INPUT bytes); the error
 * message starts with the path. */
json_t *yaml_json_load_file(const char *path, char *err, size_t errlen);

/* Same, collecting the timestamp values into timestamps as
 * yaml_json_load_named does. */
json_t *yaml_json_load_file_timestamps(const char *path, json_t *timestamps, char *err, size_t errlen);

#endif
