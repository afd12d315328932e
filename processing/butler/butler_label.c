/*
 * butler_label.c - repository labels resolved as Butler does, through the
 * YAML index named by $DAF_BUTLER_REPOSITORY_INDEX (butler.h).
 */
#include "butler__internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ocps/yaml_json.h"

/* A value of the index: a path or file:// URI; a butler.yaml (or any
 * .yaml/.json file) stands for its directory. */
static int bl_index_value(const char *label, const char *value, char *out, size_t outlen, char *err,
                          size_t errlen)
{
    const char *path = value;
    if (strncmp(value, "file://", 7) == 0) {
        path = value + 7;
    } else if (strstr(value, "://") != NULL) {
        return bl_fail(err, errlen, "repository '%s' is %s: only local repositories are supported", label,
                       value);
    }
    size_t n = strlen(path);
    if (n == 0) {
        return bl_fail(err, errlen, "repository '%s' has an empty path in the index", label);
    }
    int len = snprintf(out, outlen, "%s", path);
    if (len < 0 || (size_t)len >= outlen) {
        return bl_fail(err, errlen, "repository '%s': path too long", label);
    }
    bool config_file =
        (n > 5 && strcmp(path + n - 5, ".yaml") == 0) || (n > 5 && strcmp(path + n - 5, ".json") == 0);
    if (config_file) {
        char *slash = strrchr(out, '/');
        if (slash == NULL) {
            snprintf(out, outlen, ".");
        } else if (slash == out) {
            out[1] = '\0';
        } else {
            *slash = '\0';
        }
    }
    return 0;
}

static bool bl_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int bl_as_path(const char *label, char *out, size_t outlen, char *err, size_t errlen)
{
    int len = snprintf(out, outlen, "%s", label);
    if (len < 0 || (size_t)len >= outlen) {
        return bl_fail(err, errlen, "%s: path too long", label);
    }
    return 0;
}

int butler_resolve_label(const char *label, char *out, size_t outlen, char *err, size_t errlen)
{
    if (label == NULL || label[0] == '\0') {
        return bl_fail(err, errlen, "no repository given");
    }
    const char *index = getenv("DAF_BUTLER_REPOSITORY_INDEX");
    if (index == NULL || index[0] == '\0') {
        return bl_as_path(label, out, outlen, err, errlen);
    }
    char why[512];
    json_t *doc = yaml_json_load_file(index, why, sizeof why);
    if (doc == NULL || !json_is_object(doc)) {
        json_decref(doc);
        if (bl_is_dir(label)) { /* a path works even with a broken index */
            return bl_as_path(label, out, outlen, err, errlen);
        }
        return bl_fail(err, errlen, "repository index %s: %s", index,
                       doc == NULL ? why : "not a mapping of labels to repositories");
    }
    json_t *value = json_object_get(doc, label);
    int rc;
    if (value == NULL) {
        rc = bl_as_path(label, out, outlen, err, errlen);
    } else if (!json_is_string(value)) {
        rc = bl_fail(err, errlen, "repository index %s: '%s' is not a string", index, label);
    } else {
        rc = bl_index_value(label, json_string_value(value), out, outlen, err, errlen);
    }
    json_decref(doc);
    return rc;
}

void butler_label_hint(const char *label, char *msg, size_t msglen)
{
    if (label == NULL || label[0] == '\0' || strchr(label, '/') != NULL || bl_is_dir(label)) {
        return;
    }
    const char *index = getenv("DAF_BUTLER_REPOSITORY_INDEX");
    size_t n = strlen(msg);
    if (index == NULL || index[0] == '\0') {
        snprintf(
            msg + n, msglen - n,
            " (the butler '%s' is not a directory, and DAF_BUTLER_REPOSITORY_INDEX is not set to name it "
            "as a label)",
            label);
    } else {
        snprintf(msg + n, msglen - n, " (the butler '%s' is neither a directory nor a label of %s)", label,
                 index);
    }
}
