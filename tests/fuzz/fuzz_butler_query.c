/*
 * fuzz_butler_query: libFuzzer target for the Butler --where parser and
 * its SQL translation (processing/butler). Any input must give either a
 * query or an error naming a column, without crashing, leaking or tripping
 * a sanitizer; and the SQL of a query may hold only the registry's column
 * names, SQL keywords, operators and '?' placeholders (one per parameter):
 * no character of a literal ever reaches the SQL text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ocps/butler_query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const fq_words[] = {"instrument",
                                       "exposure",
                                       "detector",
                                       "day_obs",
                                       "seq_num",
                                       "physical_filter",
                                       "observation_type",
                                       "exposure_time",
                                       "obs_id",
                                       "AND",
                                       "OR",
                                       "NOT",
                                       "IN",
                                       "BETWEEN"};

static int fq_is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

/* Length of the allowed word at s, or 0. */
static size_t fq_word(const char *s)
{
    size_t n = 0;
    while (fq_is_word_char(s[n])) {
        n++;
    }
    for (size_t i = 0; n > 0 && i < sizeof fq_words / sizeof fq_words[0]; i++) {
        if (strlen(fq_words[i]) == n && memcmp(fq_words[i], s, n) == 0) {
            return n;
        }
    }
    return 0;
}

/* Abort unless sql is made only of allowed words, operators, parentheses,
 * commas, spaces and exactly nparams '?'. */
static void fq_check_sql(const char *sql, size_t nparams)
{
    size_t marks = 0;
    for (const char *s = sql; *s;) {
        if (fq_is_word_char(*s)) {
            size_t n = fq_word(s);
            if (n == 0) {
                abort();
            }
            s += n;
            continue;
        }
        if (strchr(" ()=!<>%,-?", *s) == NULL) {
            abort();
        }
        marks += *s == '?';
        s++;
    }
    if (marks != nparams) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';
    char err[256];
    butler_query *q = NULL;
    if (butler_query_parse(text, &q, err, sizeof err) != 0) {
        if (q != NULL || (strncmp(err, "column ", 7) != 0 && strncmp(err, "expression longer", 17) != 0)) {
            abort(); /* every failure names where it is */
        }
        free(text);
        return 0;
    }
    butler_sql sql;
    if (butler_query_to_sql(q, &sql, err, sizeof err) == 0) {
        fq_check_sql(sql.sql, sql.nparams);
        butler_sql_free(&sql);
    }
    butler_query_free(q);
    free(text);
    return 0;
}
