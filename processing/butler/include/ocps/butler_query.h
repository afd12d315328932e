/*
 * butler_query.h - the Butler `--where` expression subset that scripts send
 * in data_query, parsed by hand (recursive descent) and translated into an
 * SQL condition on the registry's dataset table with bound parameters only:
 * no literal of the expression ever appears in the SQL text.
 *
 * Grammar (docs/butler.md has it in EBNF): identifiers and dotted dimension
 * fields (instrument, exposure, detector, day_obs, seq_num, physical_filter,
 * exposure.day_obs, exposure.seq_num, exposure.observation_type,
 * exposure.exposure_time, ...), string ('...' or "..."), integer and float
 * literals, = != < <= > >=, [NOT] IN (item, ...) with integer ranges a..b
 * and a..b:s, AND OR NOT (case-insensitive) and parentheses, with NOT
 * binding tighter than AND, and AND tighter than OR.
 */
#ifndef BUTLER_QUERY_H
#define BUTLER_QUERY_H

#include <stddef.h>

/* Longest expression accepted, in bytes. */
#define BUTLER_QUERY_MAX_LEN 4096
/* Deepest nesting of parentheses and NOT accepted. */
#define BUTLER_QUERY_MAX_DEPTH 64

typedef struct butler_query butler_query;

/* Kind of a bound parameter. */
typedef enum butler_param_kind { BUTLER_PARAM_INT, BUTLER_PARAM_FLOAT, BUTLER_PARAM_TEXT } butler_param_kind;

/* One bound parameter of the translated SQL, in '?' order. */
typedef struct butler_param {
    butler_param_kind kind;
    long long i; /* BUTLER_PARAM_INT */
    double f;    /* BUTLER_PARAM_FLOAT */
    char *text;  /* BUTLER_PARAM_TEXT (owned by the butler_sql) */
} butler_param;

/* An SQL condition and its parameters (owned; butler_sql_free). */
typedef struct butler_sql {
    char *sql; /* refers to columns of the dataset table unqualified */
    butler_param *params;
    size_t nparams;
} butler_sql;

/* Parse text (NUL-terminated). An empty or blank text is a valid query that
 * selects everything. Returns 0 and *out (free with butler_query_free), or
 * -1 with a message "column N: ..." naming the 1-based column and token. */
int butler_query_parse(const char *text, butler_query **out, char *err, size_t errlen);

/* Free a parsed query (NULL is fine). */
void butler_query_free(butler_query *q);

/* Translate a parsed query into an SQL condition (the empty string for an
 * empty query: no condition). Returns 0 and fills *out, or -1 with a
 * message (out of memory, a type mismatch naming the column). */
int butler_query_to_sql(const butler_query *q, butler_sql *out, char *err, size_t errlen);

/* Free what butler_query_to_sql filled in (the struct itself is the
 * caller's); safe on a zeroed struct. */
void butler_sql_free(butler_sql *s);

/* The dataset-table column an identifier of the language names (e.g.
 * "exposure.day_obs" -> "day_obs"), or NULL if the identifier is unknown. */
const char *butler_query_column(const char *identifier);

#endif
