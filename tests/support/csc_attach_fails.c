/*
 * ocps-csc whose ocps_app_attach fails after registering its commands, as
 * an interface lacking a command would make it fail: the start-up error
 * path once the CSC is open (test_csc_config).
 */
#include "ocps/ocps_app.h"
#include "ocps/sal_csc.h"

static int attach_then_fail(ocps_app *a, sal_csc *csc, char *err, size_t errlen)
{
    int rc = ocps_app_attach(a, csc, err, errlen);
    return rc != 0 ? rc : sal_csc_add_command(csc, "no_such_command", NULL, NULL, 0, err, errlen);
}

#define ocps_app_attach attach_then_fail
#include "ocps_csc_main.c"
