/*
 * sal_json.h - samples as JSON objects (jansson), for the commander's
 * output and for logs: {"field": value, ...} in field order.
 */
#ifndef SAL_JSON_H
#define SAL_JSON_H

#include <stdbool.h>

#include <jansson.h>

#include "ocps/sal_interface.h"

/* A new JSON object with the sample's fields (private ones too if
 * with_private); arrays become JSON arrays. NULL on allocation failure. */
json_t *sal_sample_to_json(const sal_topic_info *topic, const void *sample, bool with_private);

#endif
