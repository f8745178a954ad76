/* lm-slot: the replication slot, the publication and the exported snapshot
 * on the source. Option parsing and the subcommand dispatch live here; the
 * subcommands in create.c and manage.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "opts.h"
#include "slot.h"

enum cmd { CMD_NONE, CMD_CREATE, CMD_STATUS, CMD_DROP, CMD_ADVANCE };

static const char *cmd_names[] = {"", "create", "status", "drop", "advance"};

static void usage_create(void)
{
    printf("  %s create --source=CONN --slot=NAME [OPTION]...\n"
           "    Check every precondition first, reporting every problem at once; then\n"
           "    create the publication and the logical slot (pgoutput) with an exported\n"
           "    snapshot, and print slot, consistent_point, snapshot, system_identifier,\n"
           "    publication and database. An extension's own tables are never\n"
           "    published. On a TimescaleDB source the hypertables are published with\n"
           "    their chunk schemas whole (superuser), so chunks made later are in it;\n"
           "    compressed chunks, continuous aggregates and jobs that drop or rewrite\n"
           "    chunks are refused (see lm-slot(1), TIMESCALEDB).\n"
           "      --publication=NAME   publication name (default: the slot name)\n"
           "  -t, --table=TABLE        publish TABLE (schema.table or table; a partitioned\n"
           "                           table means its leaf partitions); may be repeated\n"
           "  -n, --schema=SCHEMA      publish every table in SCHEMA; may be repeated\n"
           "  -T, --exclude-table=TABLE  leave TABLE out; may be repeated\n"
           "      --all-tables         FOR ALL TABLES instead of an explicit list (covers\n"
           "                           tables created later, keyless ones too; superuser)\n"
           "      --replica-identity-full  set REPLICA IDENTITY FULL on published tables\n"
           "                           that have no replica identity, instead of refusing\n"
           "                           (a hypertable: on it, and TimescaleDB gives it to\n"
           "                           its chunks)\n"
           "      --ddl                capture DDL on the source (event triggers writing\n"
           "                           lm.ddl_log, published): lm-decode streams each command\n"
           "                           and lm-apply replays it in place; superuser\n"
           "      --hold               keep the snapshot importable until standard input\n"
           "                           reaches end of file or SIGINT/SIGTERM arrives\n"
           "      --json               print one JSON object\n"
           "      --output=FILE        write the result to FILE (to FILE.tmp first, then\n"
           "                           renamed: FILE is complete or absent)\n",
           lm_progname());
}

static void usage_status(void)
{
    printf("  %s status --source=CONN --slot=NAME [--json]\n"
           "    Show whether the slot exists and is active, its lag and retained WAL in\n"
           "    bytes, wal_status, catalog_xmin and the xmin a held snapshot pins.\n",
           lm_progname());
}

static void usage_drop(void)
{
    printf("  %s drop --source=CONN --slot=NAME [--publication=NAME]\n"
           "    Drop the slot and the publication (default: the slot name), each only\n"
           "    if it exists, and the DDL capture of create --ddl made for that\n"
           "    publication. Refuses while the slot is active.\n",
           lm_progname());
}

static void usage_advance(void)
{
    printf("  %s advance --source=CONN --slot=NAME --to=LSN [--json]\n"
           "    Move the slot's confirmed position forward to LSN, releasing WAL.\n",
           lm_progname());
}

static enum cmd cmd = CMD_NONE;   /* the subcommand, for usage() */

/* the whole usage, or the subcommand's only once it is known */
static void usage(void)
{
    printf("%s manages the replication slot, the publication and the exported snapshot\n"
           "on the source of a live migration.\n\n"
           "Usage:\n",
           lm_progname());
    if (cmd == CMD_NONE || cmd == CMD_CREATE) usage_create();
    if (cmd == CMD_NONE || cmd == CMD_STATUS) usage_status();
    if (cmd == CMD_NONE || cmd == CMD_DROP) usage_drop();
    if (cmd == CMD_NONE || cmd == CMD_ADVANCE) usage_advance();
    printf("\nCommon options:\n"
           "  -s, --source=CONN        source connection string or URI (default: the libpq\n"
           "                           environment: PGHOST, PGDATABASE, ...)\n"
           "  -S, --slot=NAME          slot name: a-z, 0-9 and _, at most 63 characters\n"
           "  -V, --version            output version information, then exit\n"
           "  -?, --help               show this help, then exit\n\n"
           LM_EXIT_HELP_SLOT);
}

/* Which options each subcommand takes. */
enum {
    O_PUB = 1, O_TABLE = 2, O_SCHEMA = 4, O_EXCLUDE = 8, O_ALL = 16, O_RIFULL = 32,
    O_HOLD = 64, O_JSON = 128, O_TO = 256, O_OUTPUT = 512, O_DDL = 1024
};
static const int allowed[] = {
    0,
    O_PUB | O_TABLE | O_SCHEMA | O_EXCLUDE | O_ALL | O_RIFULL | O_HOLD | O_JSON | O_OUTPUT | O_DDL,
    O_JSON,
    O_PUB,
    O_TO | O_JSON,
};

static void push(const char ***arr, int *n, const char *v)
{
    *arr = lm_realloc(*arr, (size_t)(*n + 1) * sizeof **arr);
    (*arr)[(*n)++] = v;
}

int main(int argc, char **argv)
{
    enum { OPT_PUBLICATION = LM_OPT_OWN, OPT_ALL_TABLES, OPT_RI_FULL, OPT_HOLD, OPT_JSON, OPT_TO,
           OPT_OUTPUT, OPT_DDL };
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'},
        {"slot", required_argument, NULL, 'S'},
        {"publication", required_argument, NULL, OPT_PUBLICATION},
        {"table", required_argument, NULL, 't'},
        {"schema", required_argument, NULL, 'n'},
        {"exclude-table", required_argument, NULL, 'T'},
        {"all-tables", no_argument, NULL, OPT_ALL_TABLES},
        {"replica-identity-full", no_argument, NULL, OPT_RI_FULL},
        {"hold", no_argument, NULL, OPT_HOLD},
        {"json", no_argument, NULL, OPT_JSON},
        {"to", required_argument, NULL, OPT_TO},
        {"output", required_argument, NULL, OPT_OUTPUT},
        {"ddl", no_argument, NULL, OPT_DDL},
        LM_OPTIONS_COMMON,
        {NULL, 0, NULL, 0}};
    slot_opts o;
    int c, used = 0;
    bool to_set = false;
    const char *why;

    memset(&o, 0, sizeof o);
    lm_program_start(argc, argv, usage);
    if (argc < 2)
        lm_usage_error("no subcommand given: use create, status, drop or advance");
    if (strcmp(argv[1], "help") == 0)
        lm_program_option(LM_OPT_HELP);
    for (int i = 1; i < (int)(sizeof cmd_names / sizeof cmd_names[0]); i++)
        if (strcmp(argv[1], cmd_names[i]) == 0)
            cmd = (enum cmd)i;
    if (cmd == CMD_NONE)
        lm_usage_error("unknown subcommand \"%s\": use create, status, drop or advance", argv[1]);
    lm_program_subcommand(argc, argv, cmd_names[cmd], usage);

    optind = 2; /* the options follow the subcommand */
    while ((c = getopt_long(argc, argv, "s:S:t:n:T:V", longopts, NULL)) != -1) {
        int bit = 0;
        switch (c) {
        case 's': o.source = optarg; break;
        case 'S': o.slot = optarg; break;
        case OPT_PUBLICATION: o.publication = optarg; bit = O_PUB; break;
        case 't': push(&o.tables, &o.ntables, optarg); bit = O_TABLE; break;
        case 'n': push(&o.schemas, &o.nschemas, optarg); bit = O_SCHEMA; break;
        case 'T': push(&o.excludes, &o.nexcludes, optarg); bit = O_EXCLUDE; break;
        case OPT_ALL_TABLES: o.all_tables = true; bit = O_ALL; break;
        case OPT_RI_FULL: o.ri_full = true; bit = O_RIFULL; break;
        case OPT_HOLD: o.hold = true; bit = O_HOLD; break;
        case OPT_JSON: o.json = true; bit = O_JSON; break;
        case OPT_OUTPUT: o.output = optarg; bit = O_OUTPUT; break;
        case OPT_DDL: o.ddl = true; bit = O_DDL; break;
        case OPT_TO: o.to_lsn = lm_opt_lsn("--to", optarg); to_set = true; bit = O_TO; break;
        default: lm_program_option(c);
        }
        used |= bit;
        if (bit && !(allowed[cmd] & bit)) {
            const char *name = "";
            for (const struct option *lo = longopts; lo->name; lo++)
                if (lo->val == c)
                    name = lo->name;
            lm_usage_error("option --%s is not valid with %s", name, cmd_names[cmd]);
        }
    }
    if (optind < argc)
        lm_usage_error("unexpected argument \"%s\"", argv[optind]);
    if (!o.slot)
        lm_usage_error("no slot given: use --slot=NAME");
    if (!lm_slot_name_valid(o.slot, &why))
        lm_usage_error("invalid slot name \"%s\": %s", o.slot, why);
    if (!o.source)
        o.source = "";
    if (o.publication) {
        if (!*o.publication)
            lm_usage_error("--publication must not be empty");
        if (strlen(o.publication) > 63)
            lm_usage_error("publication name \"%s\" is longer than 63 bytes", o.publication);
    } else
        o.publication = o.slot;
    if (o.all_tables && (used & (O_TABLE | O_SCHEMA | O_EXCLUDE)))
        lm_usage_error("--all-tables cannot be combined with --table, --schema or --exclude-table");
    if (o.output && !*o.output)
        lm_usage_error("--output must not be empty");
    if (cmd == CMD_ADVANCE && !to_set)
        lm_usage_error("no target position given: use --to=LSN");

    switch (cmd) {
    case CMD_CREATE: return slot_create(&o);
    case CMD_STATUS: return slot_status(&o);
    case CMD_DROP: return slot_drop(&o);
    case CMD_ADVANCE: return slot_advance(&o);
    default: return LM_EXIT_FAILURE;
    }
}
