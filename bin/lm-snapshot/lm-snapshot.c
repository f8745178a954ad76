/* lm-snapshot: copy schema and data of a source database as of an exported
 * snapshot to a target, or write them as a change stream. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <libpq/libpq-fs.h>

#include "exitcodes.h"
#include "log.h"
#include "lsn.h"
#include "opts.h"
#include "pgconn.h"
#include "privdir.h"
#include "progress.h"
#include "schema.h"
#include "sig.h"
#include "state.h"
#include "lm-snapshot.h"

#define ARCHIVE_NAME "schema.dump"
#define PIECE_MAX (60 * 1024)

static options opt;
static double phase_secs[8];
static const char *phase_names[8] = {"dump", "pre-data", "data", "sequences", "large objects",
                                     "post-data", "analyze", "stream"};
enum { PH_DUMP, PH_PRE, PH_DATA, PH_SEQ, PH_LO, PH_POST, PH_ANALYZE, PH_STREAM };

static void usage(void)
{
    printf("%s copies the schema and the data of a PostgreSQL database as of an exported\n"
           "snapshot to a target database, or writes them as an lm change stream.\n\n"
           "Usage:\n  %s --source=CONN --target=CONN --snapshot=NAME [OPTION]...\n"
           "  %s --source=CONN --output=FILE|- --snapshot=NAME [OPTION]...\n\n"
           "Connections:\n"
           "  -s, --source=CONN           source database (connection string or URI)\n"
           "  -t, --target=CONN           target database\n"
           "  -o, --output=FILE           write a change stream to FILE (- for stdout)\n"
           "                              instead of copying to a target\n"
           "Snapshot:\n"
           "  -S, --snapshot=NAME         exported snapshot to copy as of (lm-slot create --hold)\n"
           "      --sync-lsn=LSN          the snapshot's consistent point: recorded per table\n"
           "                              in lm.sync and in the stream\n"
           "      --slot=NAME             slot name for the stream header\n"
           "      --resume                continue an interrupted copy; when the snapshot is\n"
           "                              gone, re-copy unfinished tables under a fresh one\n"
           "What:\n"
           "      --schema-only           dump the schema and restore its pre-data part only\n"
           "      --data-only             copy the data (and sequences, large objects) only\n"
           "      --post-data             restore indexes, constraints, triggers, then ANALYZE\n"
           "      --table=PATTERN         only tables matching PATTERN (repeatable)\n"
           "      --schema=PATTERN        only schemas matching PATTERN (repeatable)\n"
           "      --exclude-table=PATTERN leave out tables matching PATTERN (repeatable)\n"
           "      --no-owner              restore without owners and privileges\n"
           "      --skip-db-settings      leave out the database's settings (ALTER DATABASE\n"
           "                              ... SET, ALTER ROLE ... IN DATABASE ... SET), which\n"
           "                              are otherwise set on the target after post-data\n"
           "      --target-schema=restore|existing\n"
           "                              restore the source's tables (default), or copy into\n"
           "                              the tables the target already has (made by the DBA:\n"
           "                              partitioned, extra columns) and restore only the\n"
           "                              indexes and constraints it lacks\n"
           "      --check-target          with --target-schema=existing: check that the target's\n"
           "                              tables can take the source's rows, then exit (no\n"
           "                              snapshot needed, nothing changed)\n"
           "      --hypertable=TABLE:COLUMN[:INTERVAL]\n"
           "                              make TABLE a TimescaleDB hypertable on the target\n"
           "                              (a TimescaleDB source's hypertables are made with\n"
           "                              their dimensions without it, and copied chunk by chunk)\n"
           "How:\n"
           "  -j, --jobs=N                parallel workers (1..64, default 4)\n"
           "      --split-larger-than=SIZE\n"
           "                              cut tables larger than SIZE into block ranges\n"
           "                              (default: the copy's size / (2 x jobs), within\n"
           "                              64MB..1GB)\n"
           "      --workdir=DIR           where the schema archive is kept\n"
           "      --compress              zstd-compress the stream (default when not a terminal\n"
           "                              is plain; see lm-snapshot(1))\n"
           "      --progress[=auto|always|never]\n"
           "                              progress on stderr: auto (the default) shows it when\n"
           "                              stderr is a terminal, redrawn in place (the copy's\n"
           "                              bytes and rows against the source's estimates,\n"
           "                              rate, ETA, tables in flight; then the index builds);\n"
           "                              always also as plain lines, one a second, when it is\n"
           "                              not; never: none. A bare --progress means always\n"
           "Other:\n"
           "  -V, --version               output version information, then exit\n"
           "  -?, --help                  show this help, then exit\n\n"
           LM_EXIT_HELP_SNAPSHOT,
           lm_progname(), lm_progname(), lm_progname());
}

static void add_list(const char ***list, int *n, const char *v)
{
    *list = lm_realloc(*list, (size_t)(*n + 1) * sizeof **list);
    (*list)[(*n)++] = v;
}

static void parse_hypertable(const char *v)
{
    hypertable_opt h = {0};
    char *s = lm_strdup(v);
    char *c1 = strchr(s, ':');
    char *c2;
    if (!c1 || c1 == s || !c1[1])
        lm_usage_error("invalid value \"%s\" for option --hypertable: use TABLE:COLUMN[:INTERVAL]", v);
    *c1 = '\0';
    c2 = strchr(c1 + 1, ':');
    if (c2) {
        *c2 = '\0';
        if (!c2[1])
            lm_usage_error("invalid value \"%s\" for option --hypertable: empty interval", v);
        h.interval = c2 + 1;
    }
    if (!c1[1])
        lm_usage_error("invalid value \"%s\" for option --hypertable: empty column", v);
    h.table = s;
    h.column = c1 + 1;
    opt.hypertables = lm_realloc(opt.hypertables, (size_t)(opt.nhypertables + 1) * sizeof h);
    opt.hypertables[opt.nhypertables++] = h;
}

static void parse_options(int argc, char **argv)
{
    enum { OPT_SYNC = LM_OPT_OWN, OPT_SLOT, OPT_RESUME, OPT_SCHEMA_ONLY, OPT_DATA_ONLY, OPT_POST_DATA, OPT_TABLE,
           OPT_SCHEMA, OPT_EXCLUDE, OPT_NO_OWNER, OPT_HYPER, OPT_SPLIT, OPT_WORKDIR, OPT_COMPRESS, OPT_PROGRESS,
           OPT_TARGET_SCHEMA, OPT_CHECK_TARGET, OPT_SKIP_DB_SETTINGS };
    static const struct option longopts[] = {
        {"source", required_argument, NULL, 's'},
        {"target", required_argument, NULL, 't'},
        {"output", required_argument, NULL, 'o'},
        {"snapshot", required_argument, NULL, 'S'},
        {"sync-lsn", required_argument, NULL, OPT_SYNC},
        {"slot", required_argument, NULL, OPT_SLOT},
        {"resume", no_argument, NULL, OPT_RESUME},
        {"schema-only", no_argument, NULL, OPT_SCHEMA_ONLY},
        {"data-only", no_argument, NULL, OPT_DATA_ONLY},
        {"post-data", no_argument, NULL, OPT_POST_DATA},
        {"table", required_argument, NULL, OPT_TABLE},
        {"schema", required_argument, NULL, OPT_SCHEMA},
        {"exclude-table", required_argument, NULL, OPT_EXCLUDE},
        {"no-owner", no_argument, NULL, OPT_NO_OWNER},
        {"skip-db-settings", no_argument, NULL, OPT_SKIP_DB_SETTINGS},
        {"hypertable", required_argument, NULL, OPT_HYPER},
        {"target-schema", required_argument, NULL, OPT_TARGET_SCHEMA},
        {"check-target", no_argument, NULL, OPT_CHECK_TARGET},
        {"jobs", required_argument, NULL, 'j'},
        {"split-larger-than", required_argument, NULL, OPT_SPLIT},
        {"workdir", required_argument, NULL, OPT_WORKDIR},
        {"compress", no_argument, NULL, OPT_COMPRESS},
        {"progress", optional_argument, NULL, OPT_PROGRESS},
        LM_OPTIONS_COMMON,
        {NULL, 0, NULL, 0}};
    int c, modes;
    const char *delay;

    opt.jobs = 4;
    opt.progress = LM_PROGRESS_AUTO;
    opt.split_bytes = 0; /* automatic, see plan_fresh */
    while ((c = getopt_long(argc, argv, "s:t:o:S:j:V", longopts, NULL)) != -1) {
        switch (c) {
        case 's': opt.source = optarg; break;
        case 't': opt.target = optarg; break;
        case 'o': opt.output = optarg; break;
        case 'S': opt.snapshot = optarg; break;
        case OPT_SYNC: opt.sync_lsn = lm_opt_lsn("--sync-lsn", optarg); opt.have_sync_lsn = true; break;
        case OPT_SLOT: opt.slot = optarg; break;
        case OPT_RESUME: opt.resume = true; break;
        case OPT_SCHEMA_ONLY: opt.schema_only = true; break;
        case OPT_DATA_ONLY: opt.data_only = true; break;
        case OPT_POST_DATA: opt.post_data_only = true; break;
        case OPT_TABLE: add_list(&opt.tables, &opt.ntables, optarg); break;
        case OPT_SCHEMA: add_list(&opt.schemas, &opt.nschemas, optarg); break;
        case OPT_EXCLUDE: add_list(&opt.excludes, &opt.nexcludes, optarg); break;
        case OPT_NO_OWNER: opt.no_owner = true; break;
        case OPT_SKIP_DB_SETTINGS: opt.skip_db_settings = true; break;
        case OPT_HYPER: parse_hypertable(optarg); break;
        case OPT_TARGET_SCHEMA:
            if (strcmp(optarg, "existing") == 0)
                opt.existing = true;
            else if (strcmp(optarg, "restore") == 0)
                opt.existing = false;
            else
                lm_usage_error("invalid value \"%s\" for option --target-schema: use restore or existing",
                               optarg);
            break;
        case OPT_CHECK_TARGET: opt.check_target = true; break;
        case 'j': opt.jobs = (int)lm_opt_int("--jobs", optarg, 1, 64); break;
        case OPT_SPLIT:
            opt.split_bytes = lm_opt_size("--split-larger-than", optarg, 8192, UINT64_MAX / 2);
            break;
        case OPT_WORKDIR: opt.workdir = optarg; break;
        case OPT_COMPRESS: opt.compress = true; break;
        case OPT_PROGRESS: opt.progress = lm_opt_progress(optarg); break;
        default: lm_program_option(c);
        }
    }
    if (optind < argc)
        lm_usage_error("too many command-line arguments (first is \"%s\")", argv[optind]);
    modes = opt.schema_only + opt.data_only + opt.post_data_only;
    if (modes > 1)
        lm_usage_error("--schema-only, --data-only and --post-data cannot be combined");
    if (!opt.source && !opt.post_data_only)
        lm_usage_error("no source given: use --source");
    if (opt.target && opt.output)
        lm_usage_error("--target and --output cannot be combined");
    if (!opt.target && !opt.output)
        lm_usage_error("no target given: use --target, or --output for a stream");
    if (opt.check_target && !opt.existing)
        lm_usage_error("--check-target works with --target-schema=existing only");
    if (opt.check_target && modes)
        lm_usage_error("--check-target cannot be combined with --schema-only, --data-only or --post-data");
    if (opt.existing && opt.output)
        lm_usage_error("--target-schema=existing works with --target only");
    if (opt.existing && opt.nhypertables)
        lm_usage_error("--hypertable cannot be combined with --target-schema=existing: the target's "
                       "tables are used as they are");
    if (!opt.snapshot && !opt.post_data_only && !opt.check_target)
        lm_usage_error("no snapshot given: use --snapshot (lm-slot create --hold prints one)");
    if (opt.output && opt.resume)
        lm_usage_error("--resume works with --target only: a stream is written whole");
    if (opt.output && opt.post_data_only)
        lm_usage_error("--post-data works with --target only (lm-apply restores it from a stream)");
    if (opt.output && opt.nhypertables)
        lm_usage_error("--hypertable works with --target only");
    if (opt.source && !lm_conninfo_valid(opt.source, NULL))
        lm_usage_error("invalid connection string for --source");
    if (opt.target && !lm_conninfo_valid(opt.target, NULL))
        lm_usage_error("invalid connection string for --target");
    if (opt.snapshot) {
        for (const char *p = opt.snapshot; *p; p++)
            if (!((*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'F') || (*p >= 'a' && *p <= 'f') || *p == '-'))
                lm_usage_error("invalid snapshot name \"%s\": expected something like 00000003-0000001B-1",
                               opt.snapshot);
    }
    delay = getenv("LM_SNAPSHOT_TEST_DELAY_MS");
    if (delay)
        opt.test_delay_ms = atoi(delay);
}

/* ---------- work directory ---------- */

static char *default_workdir(void)
{
    const char *tmp = getenv("TMPDIR");
    char *desc = lm_conninfo_describe(opt.target ? opt.target : opt.source);
    uint32_t h = 2166136261u;
    for (const char *p = desc; *p; p++)
        h = (h ^ (uint8_t)*p) * 16777619u;
    free(desc);
    return lm_psprintf("%s/lm-snapshot.%08x", tmp && *tmp ? tmp : "/tmp", h);
}

static void make_dir(const char *dir)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        lm_fatal(LM_EXIT_IO, "could not create work directory \"%s\": %s", dir, strerror(errno));
    /* pg_restore runs what the schema dump in it says */
    lm_require_private_dir(dir, "work directory");
}

/* ---------- phases ---------- */

static int64_t phase_start;
static void phase_begin(const char *what)
{
    phase_start = lm_monotonic_us();
    lm_info("%s", what);
}
static void phase_end(int ph) { phase_secs[ph] += (double)(lm_monotonic_us() - phase_start) / 1e6; }

/* Open the snapshot transaction on the planning connection; false if the
 * snapshot is not importable (the error kept in *err). */
static bool import_snapshot(PGconn *conn, const char *snap, char **err)
{
    char *lit = lm_literal(snap);
    char *sql = lm_psprintf("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "
                            "SET TRANSACTION SNAPSHOT %s", lit);
    PGresult *res = lm_exec_try(conn, sql, err);
    free(sql);
    free(lit);
    if (!res) {
        PQclear(PQexec(conn, "ROLLBACK"));
        return false;
    }
    PQclear(res);
    return true;
}

/* A temporary logical slot over a replication connection: a fresh exported
 * snapshot and its consistent point. The connection must stay open and idle
 * while the snapshot is in use. */
static PGconn *fresh_snapshot(run *r)
{
    PGconn *repl = lm_connect(opt.source, "source", LM_CONN_REPLICATION);
    char *sql = lm_psprintf("CREATE_REPLICATION_SLOT lm_tmp_%d TEMPORARY LOGICAL pgoutput "
                            "(SNAPSHOT 'export')", (int)getpid());
    PGresult *res = lm_exec(repl, LM_EXIT_SERVER, sql);
    if (!lm_lsn_parse(PQgetvalue(res, 0, 1), &r->sync_lsn))
        lm_fatal(LM_EXIT_SERVER, "unexpected consistent point \"%s\"", PQgetvalue(res, 0, 1));
    r->snapshot = lm_strdup(PQgetvalue(res, 0, 2));
    r->have_sync = true;
    r->fresh = true;
    lm_info("snapshot \"%s\" is gone: re-copying unfinished tables under fresh snapshot \"%s\" "
            "(consistent point %s)", opt.snapshot, r->snapshot, PQgetvalue(res, 0, 1));
    PQclear(res);
    free(sql);
    return repl;
}

static void copy_sequences(run *r, PGconn *src, PGconn *tgt)
{
    PGresult *seqs = lm_exec(src, LM_EXIT_SERVER,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'lm')"
        " AND n.nspname !~ '^pg_(toast|temp)'"
        /* an extension's own sequences are the target's extension's
         * (TimescaleDB's catalog ids: set back, they would collide) */
        " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
        "   AND d.objid = c.oid AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e')"
        " ORDER BY 1, 2");
    PGresult *exist = lm_exec(tgt, LM_EXIT_SERVER,
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'S'");
    lm_buf q = {0}, set = {0};
    int n = 0;

    for (int i = 0; i < PQntuples(seqs); i++) {
        const char *nsp = PQgetvalue(seqs, i, 0), *rel = PQgetvalue(seqs, i, 1);
        bool found = false;
        for (int k = 0; k < PQntuples(exist) && !found; k++)
            found = strcmp(PQgetvalue(exist, k, 0), nsp) == 0 && strcmp(PQgetvalue(exist, k, 1), rel) == 0;
        if (!found)
            continue;
        if (q.len)
            lm_buf_puts(&q, " UNION ALL ");
        lm_buf_puts(&q, "SELECT ");
        {
            char *qn = lm_qualified(nsp, rel);
            char *lit = lm_literal(qn);
            char *part = lm_psprintf("%s, last_value, is_called FROM %s", lit, qn);
            lm_buf_put(&q, part, strlen(part));
            free(part);
            free(lit);
            free(qn);
        }
        n++;
    }
    if (n) {
        PGresult *vals;
        lm_buf_u8(&q, '\0');
        /* a sequence read is not transactional: this is its value now */
        vals = lm_exec(src, LM_EXIT_SERVER, (char *)q.data);
        lm_buf_puts(&set, "SELECT ");
        for (int i = 0; i < PQntuples(vals); i++) {
            char *lit = lm_literal(PQgetvalue(vals, i, 0));
            char *part = lm_psprintf("%spg_catalog.setval(%s, %s, %s)", i ? ", " : "", lit,
                                     PQgetvalue(vals, i, 1),
                                     strcmp(PQgetvalue(vals, i, 2), "t") == 0 ? "true" : "false");
            lm_buf_put(&set, part, strlen(part));
            free(part);
            free(lit);
        }
        lm_buf_u8(&set, '\0');
        lm_exec_cmd(tgt, LM_EXIT_SERVER, (char *)set.data);
        PQclear(vals);
    }
    lm_info("%d sequence%s set", n, n == 1 ? "" : "s");
    free(q.data);
    free(set.data);
    PQclear(exist);
    PQclear(seqs);
    (void)r;
}

static void copy_large_objects(PGconn *src, PGconn *tgt)
{
    PGresult *los = lm_exec(src, LM_EXIT_SERVER,
                            "SELECT oid, pg_get_userbyid(lomowner) FROM pg_largeobject_metadata ORDER BY 1");
    int n = PQntuples(los);
    char *buf = lm_malloc(PIECE_MAX);

    for (int i = 0; i < n; i++) {
        Oid oid = (Oid)strtoul(PQgetvalue(los, i, 0), NULL, 10);
        int sfd, tfd, got;
        char *sql;

        lm_exec_cmd(tgt, LM_EXIT_SERVER, "BEGIN");
        sql = lm_psprintf("SELECT pg_catalog.lo_unlink(oid) FROM pg_largeobject_metadata WHERE oid = %u", oid);
        lm_exec_cmd(tgt, LM_EXIT_SERVER, sql);
        free(sql);
        if (lo_create(tgt, oid) != oid)
            lm_fatal(LM_EXIT_SERVER, "could not create large object %u on the target: %s", oid,
                     PQerrorMessage(tgt));
        sfd = lo_open(src, oid, INV_READ);
        tfd = lo_open(tgt, oid, INV_WRITE);
        if (sfd < 0 || tfd < 0)
            lm_fatal(LM_EXIT_SERVER, "could not open large object %u: %s", oid,
                     PQerrorMessage(sfd < 0 ? src : tgt));
        while ((got = lo_read(src, sfd, buf, PIECE_MAX)) > 0)
            if (lo_write(tgt, tfd, buf, (size_t)got) != got)
                lm_fatal(LM_EXIT_SERVER, "could not write large object %u: %s", oid, PQerrorMessage(tgt));
        if (got < 0)
            lm_fatal(LM_EXIT_SERVER, "could not read large object %u: %s", oid, PQerrorMessage(src));
        lo_close(src, sfd);
        lo_close(tgt, tfd);
        if (!opt.no_owner) {
            char *role = lm_ident(PQgetvalue(los, i, 1));
            sql = lm_psprintf("ALTER LARGE OBJECT %u OWNER TO %s", oid, role);
            lm_exec_cmd(tgt, LM_EXIT_SERVER, sql);
            free(sql);
            free(role);
        }
        lm_exec_cmd(tgt, LM_EXIT_SERVER, "COMMIT");
    }
    lm_info("%d large object%s copied", n, n == 1 ? "" : "s");
    free(buf);
    PQclear(los);
}

/* ---------- stream mode ---------- */

static void stream_header(run *r, PGconn *src)
{
    lm_record rec;
    uint64_t sysid = 0;
    uint32_t tli = 1;
    char *err = NULL;
    PGresult *res = lm_exec_try(src, "SELECT system_identifier::text, (SELECT timeline_id FROM "
                                     "pg_control_checkpoint()) FROM pg_control_system()", &err);
    char *db, *enc;

    if (res) {
        sysid = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        tli = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
        PQclear(res);
    } else {
        /* pg_control_system() may be denied: ask the walsender instead */
        PGconn *repl;
        free(err);
        PQclear(PQexec(src, "ROLLBACK"));
        repl = lm_connect(opt.source, "source", LM_CONN_REPLICATION);
        res = lm_exec(repl, LM_EXIT_SERVER, "IDENTIFY_SYSTEM");
        sysid = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
        tli = (uint32_t)strtoul(PQgetvalue(res, 0, 1), NULL, 10);
        PQclear(res);
        PQfinish(repl);
        if (!import_snapshot(src, r->snapshot, &err))
            lm_fatal(LM_EXIT_PREFLIGHT, "could not import snapshot \"%s\": %s", r->snapshot, err);
    }
    /* after the fallback: a failed query leaves the transaction aborted */
    db = lm_query_value(src, LM_EXIT_SERVER, "SELECT current_database()");
    enc = lm_query_value(src, LM_EXIT_SERVER, "SELECT current_setting('server_encoding')");
    memset(&rec, 0, sizeof rec);
    rec.type = LM_REC_HEADER;
    rec.u.header.version = LM_FORMAT_VERSION;
    rec.u.header.sysid = sysid;
    rec.u.header.timeline = tli;
    rec.u.header.server_version = (uint32_t)r->src_version;
    rec.u.header.dbname = db;
    rec.u.header.slot = opt.slot ? opt.slot : "";
    rec.u.header.publication = "";
    rec.u.header.encoding = enc;
    rec.u.header.producer = "lm-snapshot " LM_VERSION;
    rec.u.header.start_lsn = r->have_sync ? r->sync_lsn : 0;
    rec.u.header.created = lm_now_pgtime();
    lm_writer_put(r->w, &rec);
    free(db);
    free(enc);
}

static void stream_archive(run *r, const char *path)
{
    int fd = open(path, O_RDONLY);
    uint8_t *buf = lm_malloc(PIECE_MAX), *next = lm_malloc(PIECE_MAX);
    ssize_t got, nextgot;
    uint32_t seq = 0;

    if (fd < 0)
        lm_fatal(LM_EXIT_IO, "could not open \"%s\": %s", path, strerror(errno));
    /* read one piece ahead, so the last one can be flagged */
    got = read(fd, buf, PIECE_MAX);
    while (got > 0) {
        lm_record rec;
        nextgot = read(fd, next, PIECE_MAX);
        if (nextgot < 0)
            lm_fatal(LM_EXIT_IO, "could not read \"%s\": %s", path, strerror(errno));
        rec.type = LM_REC_ARCHIVE;
        rec.u.archive.seq = seq++;
        rec.u.archive.last = nextgot == 0;
        rec.u.archive.len = (uint32_t)got;
        rec.u.archive.data = buf;
        lm_writer_put(r->w, &rec);
        {
            uint8_t *t = buf;
            buf = next;
            next = t;
        }
        got = nextgot;
    }
    if (got < 0 || (got == 0 && seq == 0))
        lm_fatal(LM_EXIT_IO, "could not read \"%s\": %s", path, got < 0 ? strerror(errno) : "empty file");
    close(fd);
    free(buf);
    free(next);
}

typedef struct post_args {
    const char *archive;
    bool again;
} post_args;

static int restore_post_data(void *arg)
{
    const post_args *a = arg;
    return lm_schema_restore(a->archive, opt.target, "post-data", opt.jobs, opt.no_owner, a->again);
}

/* ---------- main ---------- */

int main(int argc, char **argv)
{
    run r;
    PGconn *src = NULL, *tgt = NULL, *repl = NULL;
    char *workdir, *archive;
    char *err = NULL;
    bool stream, do_dump, do_pre, do_data, do_post;
    int rc, out_fd = -1;
    int64_t t0 = lm_monotonic_us();

    lm_program_start(argc, argv, usage);
    parse_options(argc, argv);
    lm_signals_init();
    memset(&r, 0, sizeof r);
    r.o = &opt;
    pthread_mutex_init(&r.mu, NULL);
    pthread_mutex_init(&r.wmu, NULL);
    lm_progress_init(&r.prog, opt.check_target ? LM_PROGRESS_NEVER : opt.progress, stderr);
    stream = opt.output != NULL;
    do_dump = do_pre = !opt.data_only && !opt.post_data_only;
    do_data = !opt.schema_only && !opt.post_data_only;
    do_post = !opt.schema_only && !opt.data_only && !stream;
    if (opt.existing)
        do_pre = false;   /* the target's schema is the DBA's: nothing of pre-data is restored */

    workdir = opt.workdir ? lm_strdup(opt.workdir) : default_workdir();
    make_dir(workdir);
    archive = lm_psprintf("%s/%s", workdir, ARCHIVE_NAME);

    /* the source first: a run that cannot read it must not touch the target */
    if (!opt.post_data_only)
        src = lm_connect(opt.source, "source", 0);

    if (stream) {
        out_fd = strcmp(opt.output, "-") == 0 ? STDOUT_FILENO
                 : open(opt.output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (out_fd < 0)
            lm_fatal(LM_EXIT_IO, "could not open \"%s\": %s", opt.output, strerror(errno));
        if (out_fd == STDOUT_FILENO && isatty(out_fd))
            lm_usage_error("refusing to write a binary stream to a terminal: use --output=FILE or a pipe");
    } else {
        tgt = lm_connect(opt.target, "target", 0);
        r.tgt_version = lm_server_version(tgt);
        if (!opt.check_target)
            lm_state_ensure(tgt);
    }

    if (opt.post_data_only)
        goto post_data;

    r.src_version = lm_server_version(src);
    if (!r.tgt_version)
        r.tgt_version = r.src_version;
    {
        char *enc = lm_query_value(src, LM_EXIT_SERVER, "SELECT current_setting('server_encoding')");
        r.src_encoding = lm_literal(enc);
        free(enc);
    }
    r.snapshot = opt.snapshot;
    r.have_sync = opt.have_sync_lsn;
    r.sync_lsn = opt.sync_lsn;

    if (opt.check_target) {
        /* a preflight (lm-migrate's): the source as it is now, nothing made */
        lm_exec_cmd(src, LM_EXIT_SERVER, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
        plan_tables(&r, src);
        check_target_tables(&r, src, tgt);
        PQfinish(src);
        PQfinish(tgt);
        return 0;
    }

    /* an earlier run's state: resume it or refuse */
    if (tgt) {
        long long n = lm_copy_count(tgt);
        bool pre = do_pre && lm_meta_has(tgt, "lm-snapshot.pre-data");
        if (!opt.resume && (n != 0 || pre)) {
            lm_error("the target holds the state of an earlier lm-snapshot run (%lld finished "
                     "chunk%s in lm.copy%s)", n, n == 1 ? "" : "s",
                     pre ? ", schema restored" : "");
            lm_hint("Run again with --resume to continue it, or start over on an empty target "
                    "database (DROP SCHEMA lm CASCADE and the copied tables).");
            exit(LM_EXIT_PREFLIGHT);
        }
    }

    if (!import_snapshot(src, opt.snapshot, &err)) {
        if (!strstr(err, "snapshot"))
            lm_fatal(LM_EXIT_SERVER, "could not import snapshot \"%s\": %s", opt.snapshot, err);
        if (!opt.resume || stream) {
            lm_error("could not import snapshot \"%s\": %s", opt.snapshot, err);
            lm_detail("The snapshot exists only while the session that exported it stays open "
                      "and idle (lm-slot create --hold).");
            lm_hint("%s", stream ? "Export a new snapshot and run again."
                                 : "Run again with --resume to copy unfinished tables under a fresh "
                                   "snapshot, or export a new snapshot and start over.");
            exit(LM_EXIT_PREFLIGHT);
        }
        free(err);
        err = NULL;
        repl = fresh_snapshot(&r);
        if (!import_snapshot(src, r.snapshot, &err))
            lm_fatal(LM_EXIT_SERVER, "could not import fresh snapshot \"%s\": %s", r.snapshot, err);
    }

    {
        char *started = lm_query_value(src, LM_EXIT_SERVER,
                                       "SELECT extract(epoch FROM pg_postmaster_start_time())::bigint");
        r.snapshot_id = lm_psprintf("%s@%s", r.snapshot, started ? started : "");
        free(started);
    }
    plan_tables(&r, src);
    if (tgt && opt.existing)
        check_target_tables(&r, src, tgt);

    /* schema: dump while the snapshot is held */
    if (tgt && do_pre && lm_meta_has(tgt, "lm-snapshot.pre-data"))
        do_pre = false;
    if (do_dump && !(opt.resume && access(archive, R_OK) == 0)) {
        /* with --table, the planned tables are named too: pg_dump 15's
         * --table leaves out the partitions of a partitioned table, which
         * the plan copies with it */
        const char **pats = lm_malloc(sizeof *pats * (size_t)(opt.ntables + r.ntables + 1));
        int npats = 0;
        for (int i = 0; i < opt.ntables; i++)
            pats[npats++] = opt.tables[i];
        for (int i = 0; opt.ntables > 0 && i < r.ntables; i++)
            pats[npats++] = r.tables[i].qname;
        /* TimescaleDB's chunk tables and own schemas are not the
         * application's: the target makes its own */
        char **hx_tables, **hx_schemas;
        const char **excl, **excl_schemas;
        int nhx_tables, nhx_schemas, nexcl = 0;
        hyper_dump_excludes(&r, &hx_tables, &nhx_tables, &hx_schemas, &nhx_schemas);
        excl = lm_malloc(sizeof *excl * (size_t)(opt.nexcludes + nhx_tables + 1));
        for (int i = 0; i < opt.nexcludes; i++)
            excl[nexcl++] = opt.excludes[i];
        for (int i = 0; i < nhx_tables; i++)
            excl[nexcl++] = hx_tables[i];
        excl_schemas = lm_malloc(sizeof *excl_schemas * (size_t)(nhx_schemas + 1));
        for (int i = 0; i < nhx_schemas; i++)
            excl_schemas[i] = hx_schemas[i];
        phase_begin("dumping the schema");
        rc = lm_schema_dump(opt.source, r.snapshot, archive,
                            &(lm_schema_filter){pats, npats, opt.schemas, opt.nschemas,
                                                excl, nexcl, excl_schemas, nhx_schemas});
        free(pats);
        free(excl);
        free(excl_schemas);
        for (int i = 0; i < nhx_tables; i++)
            free(hx_tables[i]);
        for (int i = 0; i < nhx_schemas; i++)
            free(hx_schemas[i]);
        free(hx_tables);
        free(hx_schemas);
        if (rc)
            exit(rc);
        phase_end(PH_DUMP);
    }
    if (tgt && do_pre) {
        if (!opt.no_owner)
            check_roles(&r, src, tgt);
        hyper_check_target(&r, tgt);
        phase_begin("restoring the schema (pre-data)");
        /* begun by a run that was killed: part of it may be made. It is
         * dropped and made again only while no data was copied into it (a
         * table made by hand for --data-only is never dropped) */
        bool again = lm_meta_has(tgt, "lm-snapshot.pre-data-begun") && lm_copy_count(tgt) == 0;
        lm_meta_set(tgt, "lm-snapshot.pre-data-begun", r.snapshot_id);
        rc = lm_schema_restore(archive, opt.target, "pre-data", opt.jobs, opt.no_owner, again);
        if (rc)
            exit(rc);
        hyper_create(&r, tgt);
        lm_meta_set(tgt, "lm-snapshot.pre-data", r.snapshot_id);
        phase_end(PH_PRE);
    }

    if (stream) {
        r.w = lm_writer_new(out_fd, strcmp(opt.output, "-") == 0 ? "stdout" : opt.output,
                            opt.compress, 0);
        stream_header(&r, src);
        for (int i = 0; i < r.ntables; i++)
            if (r.tables[i].src_hyper) {
                lm_warning("hypertables of the source (%s, ...) are written as plain tables: the "
                           "stream carries their rows under their names, not their dimensions",
                           r.tables[i].qname);
                lm_hint("Copy to a TimescaleDB target directly (--target), or make the hypertables "
                        "on the target before the stream is applied.");
                break;
            }
        if (do_dump) {
            phase_begin("writing the schema archive");
            stream_archive(&r, archive);
            phase_end(PH_DUMP);
        }
    }

    if (do_data) {
        phase_begin("copying data");
        plan_chunks(&r, tgt);
        copy_chunks(&r);
        phase_end(PH_DATA);
        if (tgt) {
            phase_begin("setting sequences");
            copy_sequences(&r, src, tgt);
            phase_end(PH_SEQ);
            phase_begin("copying large objects");
            copy_large_objects(src, tgt);
            phase_end(PH_LO);
        } else {
            char *nlo = lm_query_value(src, LM_EXIT_SERVER, "SELECT count(*) FROM pg_largeobject_metadata");
            if (nlo && strcmp(nlo, "0") != 0)
                lm_warning("%s large object%s not written: a stream does not carry large objects", nlo,
                           strcmp(nlo, "1") == 0 ? "" : "s");
            free(nlo);
        }
    }
    PQclear(PQexec(src, "COMMIT"));
    PQfinish(src);
    src = NULL;
    if (repl) {
        /* the fresh snapshot is no longer needed; the temporary slot goes with it */
        PQfinish(repl);
        repl = NULL;
    }

    if (stream) {
        lm_record rec;
        memset(&rec, 0, sizeof rec);
        rec.type = LM_REC_END;
        rec.u.end.reason = LM_END_COMPLETE;
        rec.u.end.lsn = r.have_sync ? r.sync_lsn : 0;
        rec.u.end.detail = "";
        lm_writer_put(r.w, &rec);
        lm_writer_free(r.w);
        if (out_fd != STDOUT_FILENO && (fsync(out_fd) != 0 || close(out_fd) != 0))
            lm_fatal(LM_EXIT_IO, "could not write \"%s\": %s", opt.output, strerror(errno));
    }

post_data:
    if (do_post) {
        if (lm_meta_has(tgt, "lm-snapshot.post-data") && opt.resume)
            lm_info("post-data already restored by an earlier run");
        else {
            if (access(archive, R_OK) != 0) {
                lm_error("no schema archive at \"%s\"", archive);
                lm_hint("Run --post-data with the --workdir of the run that dumped the schema.");
                exit(LM_EXIT_PREFLIGHT);
            }
            phase_begin("restoring indexes, constraints and triggers (post-data)");
            /* begun by a run that was killed, or a target schema the DBA
             * made: what exists is left as it is, the rest restored */
            bool again = lm_meta_has(tgt, "lm-snapshot.post-data-begun") || opt.existing;
            lm_meta_set(tgt, "lm-snapshot.post-data-begun", "yes");
            rc = watch_post_data(&r, opt.target, restore_post_data,
                                 &(post_args){archive, again});
            if (rc)
                exit(rc);
            lm_meta_set(tgt, "lm-snapshot.post-data", "done");
            phase_end(PH_POST);
        }
        /* last: a setting (a statement_timeout, a search_path) must not
         * change the sessions of the copy; set again on --resume (the same
         * statements) */
        if (opt.skip_db_settings)
            lm_info("database settings not copied (--skip-db-settings)");
        else
            copy_db_settings(&opt, tgt);
        phase_begin("analyzing");
        {
            char jobs[16];
            const char *av[] = {"vacuumdb", "--analyze-only", "--quiet", "-j", jobs, NULL, NULL};
            char *out = NULL;
            char *dbopt;
            PGconn *c = tgt;
            snprintf(jobs, sizeof jobs, "%d", opt.jobs);
            {
                char *db = lm_conninfo_dbname(PQdb(c));
                dbopt = lm_psprintf("--dbname=%s", db);
                free(db);
            }
            av[5] = dbopt;
            rc = lm_run_pgtool(opt.target, av, NULL, &out);
            if (rc != 0) {
                lm_warning("vacuumdb --analyze-only failed (exit status %d): %s", rc, out ? out : "");
                lm_hint("Run ANALYZE on the target before it takes traffic.");
            }
            free(out);
            free(dbopt);
        }
        phase_end(PH_ANALYZE);
    }
    if (tgt)
        PQfinish(tgt);

    if (lm_log_level() >= LM_LOG_INFO) {
        print_summary(&r);
        for (int i = 0; i < 8; i++)
            if (phase_secs[i] > 0)
                fprintf(stderr, "%s: phase %-14s %8.1f s\n", lm_progname(), phase_names[i], phase_secs[i]);
        fprintf(stderr, "%s: done in %.1f s\n", lm_progname(),
                (double)(lm_monotonic_us() - t0) / 1e6);
    }
    free(archive);
    free(workdir);
    return 0;
}
