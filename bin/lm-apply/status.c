/* lm-apply --status: where an origin stands on the target (lm-apply(1)). */
#include <stdio.h>
#include <stdlib.h>

#include "apply.h"
#include "exitcodes.h"
#include "json.h"
#include "log.h"
#include "opts.h"
#include "pgconn.h"
#include "state.h"

int apply_print_status(apply_target *tgt, const char *origin, bool json)
{
    const char *p[1];
    PGresult *res;
    char *lit;
    char *sql;
    bool state = lm_state_exists(tgt_conn(tgt));

    if (!origin)
        lm_usage_error("--status needs --origin");
    p[0] = origin;
    lit = lm_literal(origin);
    sql = lm_psprintf(
        "SELECT (SELECT pg_replication_origin_progress(%s, true) WHERE EXISTS "
        "(SELECT 1 FROM pg_replication_origin WHERE roname = %s))::text, %s",
        lit, lit,
        state ? "(SELECT source_sysid::text FROM lm.origin WHERE origin = $1), "
                "(SELECT slot FROM lm.origin WHERE origin = $1), "
                "(SELECT commit_ts::text FROM lm.progress WHERE origin = $1), "
                "(SELECT applied_at::text FROM lm.progress WHERE origin = $1)"
              : "NULL::text, NULL::text, NULL::text, NULL::text WHERE $1::text IS NOT NULL");
    res = lm_execp(tgt_conn(tgt), LM_EXIT_SERVER, sql, 1, p);
    free(sql);
    free(lit);
    if (json) {
        const char *keys[] = {"position", "source_system_identifier", "slot", "last_commit_time",
                              "applied_at"};
        printf("{\"origin\":");
        lm_json_fputs(stdout, origin);
        for (int i = 0; i < 5; i++) {
            printf(",\"%s\":", keys[i]);
            if (PQgetisnull(res, 0, i))
                printf("null");
            else
                lm_json_fputs(stdout, PQgetvalue(res, 0, i));
        }
        printf("}\n");
    } else {
        printf("origin: %s\nposition: %s\n", origin,
               PQgetisnull(res, 0, 0) ? "(none)" : PQgetvalue(res, 0, 0));
        if (!PQgetisnull(res, 0, 1))
            printf("source_system_identifier: %s\nslot: %s\n", PQgetvalue(res, 0, 1),
                   PQgetvalue(res, 0, 2));
        if (!PQgetisnull(res, 0, 3))
            printf("last_commit_time: %s\napplied_at: %s\n", PQgetvalue(res, 0, 3),
                   PQgetvalue(res, 0, 4));
    }
    PQclear(res);
    return 0;
}
