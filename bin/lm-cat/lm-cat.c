/* lm-cat: show what is inside a change stream. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "escape.h"
#include "exitcodes.h"
#include "json.h"
#include "log.h"
#include "lsn.h"
#include "opts.h"
#include "relcache.h"
#include "stream.h"

enum mode { MODE_TEXT, MODE_JSON, MODE_STATS, MODE_VERIFY };

static enum mode mode = MODE_TEXT;
static char **tables;
static int ntables;
static uint64_t from_lsn = 0, to_lsn = UINT64_MAX;
static bool from_set, to_set;
static lm_buf out;

typedef struct tabstat {
    char *name;
    uint64_t ins, upd, del, trunc, bytes;
} tabstat;

static struct {
    uint64_t records, bytes, xacts;
    uint64_t by_type[128];
    uint64_t bytes_by_type[128];
    uint64_t first_commit, last_commit;
    tabstat *tabs;
    size_t ntabs;
} st;

static void usage(void)
{
    printf("%s shows what is inside an lm change stream.\n\n"
           "Usage:\n  %s [OPTION]... [FILE]...\n\n"
           "Reads FILEs in order as one stream (standard input without FILE or for \"-\");\n"
           "plain and zstd-compressed input alike.\n\n"
           "Output modes (one; default: readable text, one line per record):\n"
           "      --json             one JSON object per record\n"
           "      --stats            counts per record type, table and operation; bytes\n"
           "      --verify           check every checksum and the ending; print a summary\n"
           "Filters:\n"
           "  -t, --table=NAME       only changes to table NAME (schema.table or table);\n"
           "                         may be repeated\n"
           "      --from=LSN         only transactions committed at or after LSN\n"
           "      --to=LSN           only transactions committed at or before LSN\n"
           "Other:\n"
           "  -q, --quiet            print errors only\n"
           "  -V, --version          output version information, then exit\n"
           "  -?, --help             show this help, then exit\n\n"
           LM_EXIT_HELP_CAT,
           lm_progname(), lm_progname());
}

static bool table_selected(const lm_relentry *e)
{
    if (ntables == 0)
        return true;
    if (!e)
        return false;
    for (int i = 0; i < ntables; i++)
        if (strcmp(tables[i], e->display) == 0 || strcmp(tables[i], e->rel.relname) == 0)
            return true;
    return false;
}

static tabstat *tab_stat(const lm_relentry *e)
{
    const char *name = e ? e->display : "(unknown relation)";
    for (size_t i = 0; i < st.ntabs; i++)
        if (strcmp(st.tabs[i].name, name) == 0)
            return &st.tabs[i];
    st.tabs = lm_realloc(st.tabs, (st.ntabs + 1) * sizeof *st.tabs);
    memset(&st.tabs[st.ntabs], 0, sizeof *st.tabs);
    st.tabs[st.ntabs].name = lm_strdup(name);
    return &st.tabs[st.ntabs++];
}

/* ---------- text and JSON rendering ---------- */

static void put_s(const char *s) { lm_buf_put(&out, s, strlen(s)); }

static void putf(const char *fmt, ...) LM_PRINTF(1, 2);
static void putf(const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof tmp) {
        char *big = lm_malloc((size_t)n + 1);
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        put_s(big);
        free(big);
    } else
        put_s(tmp);
}

static void put_lsn(uint64_t lsn)
{
    char b[LM_LSN_BUFSZ];
    put_s(lm_lsn_format(lsn, b));
}

static void put_time(int64_t t)
{
    char b[64];
    put_s(lm_pgtime_format(t, b));
}

static void put_hex(const uint8_t *p, size_t n)
{
    static const uint8_t hex[] = "0123456789abcdef";
    lm_buf_reserve(&out, 2 * n);
    for (size_t i = 0; i < n; i++) {
        out.data[out.len++] = hex[p[i] >> 4];
        out.data[out.len++] = hex[p[i] & 15];
    }
}

/* ---------- escaping (escape.c): no byte of the stream reaches a terminal raw */

/* a string of the stream, escaped, into the output */
static void put_e(const char *s) { esc_put(&out, (const uint8_t *)s, strlen(s), 0); }

/* s escaped, in a string of its own (free it) */
static char *esc_dup(const char *s)
{
    lm_buf b = {0};
    esc_put(&b, (const uint8_t *)s, strlen(s), 0);
    lm_buf_u8(&b, 0);
    return (char *)b.data;
}

static void text_quoted(const uint8_t *p, size_t n)
{
    lm_buf_u8(&out, '\'');
    esc_put(&out, p, n, '\'');
    lm_buf_u8(&out, '\'');
}

static void json_str(const void *s, size_t n) { esc_json(&out, s, n); }

static const char *colname(const lm_relentry *e, uint32_t i, char *tmp)
{
    if (e && i < e->rel.natts)
        return e->rel.cols[i].name;
    snprintf(tmp, 16, "$%u", i + 1);
    return tmp;
}

static void text_tuple(const lm_relentry *e, const lm_tuple *t)
{
    char tmp[16];
    for (uint32_t i = 0; i < t->ncols; i++) {
        const lm_value *v = &t->cols[i];
        lm_buf_u8(&out, ' ');
        put_e(colname(e, i, tmp));
        if (e && i < e->rel.natts)
            putf("[%u]", e->rel.cols[i].typoid);
        lm_buf_u8(&out, ':');
        switch (v->kind) {
        case 'n': put_s("null"); break;
        case 'u': put_s("unchanged-toast-datum"); break;
        case 't': text_quoted(v->data, v->len); break;
        case 'b': put_s("\\x"); put_hex(v->data, v->len); break;
        }
    }
}

static void json_tuple(const lm_relentry *e, const lm_tuple *t)
{
    char tmp[16];
    lm_buf_u8(&out, '{');
    for (uint32_t i = 0; i < t->ncols; i++) {
        const lm_value *v = &t->cols[i];
        const char *name = colname(e, i, tmp);
        if (i)
            lm_buf_u8(&out, ',');
        json_str(name, strlen(name));
        lm_buf_u8(&out, ':');
        switch (v->kind) {
        case 'n': put_s("null"); break;
        case 'u': put_s("{\"unchanged_toast\":true}"); break;
        case 't': json_str(v->data, v->len); break;
        case 'b': put_s("{\"binary\":\""); put_hex(v->data, v->len); put_s("\"}"); break;
        }
    }
    lm_buf_u8(&out, '}');
}

static void json_key(const char *k) { putf(",\"%s\":", k); }

static void json_lsn(const char *k, uint64_t lsn)
{
    json_key(k);
    lm_buf_u8(&out, '"');
    put_lsn(lsn);
    lm_buf_u8(&out, '"');
}

static void json_string(const char *k, const char *s)
{
    json_key(k);
    json_str(s, strlen(s));
}

static void json_time(const char *k, int64_t t)
{
    json_key(k);
    lm_buf_u8(&out, '"');
    put_time(t);
    lm_buf_u8(&out, '"');
}

static void json_rel(const char *k, const lm_relentry *e, uint32_t relid)
{
    if (e)
        json_string(k, e->display);
    else
        putf(",\"%s\":null,\"relid\":%u", k, relid);
}

static const char *relname_or(const lm_relentry *e, char *tmp, uint32_t relid)
{
    if (e)
        return e->display;
    snprintf(tmp, 32, "(relid %u)", relid);
    return tmp;
}

static void flush_out(bool force)
{
    if (out.len && (force || out.len >= 65536)) {
        if (fwrite(out.data, 1, out.len, stdout) != out.len)
            lm_fatal(LM_EXIT_IO, "could not write to standard output: %s", strerror(errno));
        out.len = 0;
    }
}

static void render(const lm_record *r, lm_relcache *rc, uint64_t offset)
{
    const bool json = mode == MODE_JSON;
    char tmp[32];
    lm_relentry *e = NULL;

    if (json)
        putf("{\"type\":\"%s\",\"offset\":%" PRIu64, lm_rectype_name(r->type), offset);
    else
        put_s(lm_rectype_name(r->type));

    switch (r->type) {
    case LM_REC_HEADER:
        if (json) {
            putf(",\"version\":%u,\"system_identifier\":\"%" PRIu64 "\",\"timeline\":%u,\"server_version\":%u",
                 r->u.header.version, r->u.header.sysid, r->u.header.timeline,
                 r->u.header.server_version);
            json_string("database", r->u.header.dbname);
            json_string("slot", r->u.header.slot);
            json_string("publication", r->u.header.publication);
            json_string("encoding", r->u.header.encoding);
            json_string("producer", r->u.header.producer);
            json_lsn("start_lsn", r->u.header.start_lsn);
            json_time("created", r->u.header.created);
        } else {
            putf(" version %u system %" PRIu64 " timeline %u server %u database \"",
                 r->u.header.version, r->u.header.sysid, r->u.header.timeline,
                 r->u.header.server_version);
            put_e(r->u.header.dbname);
            put_s("\" slot \"");
            put_e(r->u.header.slot);
            put_s("\" publication \"");
            put_e(r->u.header.publication);
            put_s("\" encoding ");
            put_e(r->u.header.encoding);
            put_s(" producer \"");
            put_e(r->u.header.producer);
            put_s("\" start ");
            put_lsn(r->u.header.start_lsn);
            put_s(" created ");
            put_time(r->u.header.created);
        }
        break;
    case LM_REC_RELATION:
        e = lm_relcache_get(rc, r->u.rel.relid);
        if (json) {
            putf(",\"relid\":%u", r->u.rel.relid);
            json_string("schema", r->u.rel.nspname);
            json_string("table", r->u.rel.relname);
            put_s(",\"replica_identity\":");
            json_str(&r->u.rel.replident, 1);
            put_s(",\"columns\":[");
            for (uint32_t i = 0; i < r->u.rel.natts; i++) {
                const lm_column *c = &r->u.rel.cols[i];
                putf("%s{\"name\":", i ? "," : "");
                json_str(c->name, strlen(c->name));
                putf(",\"type_oid\":%u,\"typmod\":%d,\"key\":%s}", c->typoid, c->typmod,
                     (c->flags & LM_COL_KEY) ? "true" : "false");
            }
            put_s("]");
        } else {
            putf(" %u ", r->u.rel.relid);
            put_e(e ? e->display : "?");
            putf(" (replica identity %c):", r->u.rel.replident);
            for (uint32_t i = 0; i < r->u.rel.natts; i++) {
                const lm_column *c = &r->u.rel.cols[i];
                lm_buf_u8(&out, ' ');
                put_e(c->name);
                putf("[%u]%s", c->typoid, (c->flags & LM_COL_KEY) ? "(key)" : "");
            }
        }
        break;
    case LM_REC_TYPE:
        if (json) {
            putf(",\"oid\":%u", r->u.type.oid);
            json_string("schema", r->u.type.nspname);
            json_string("name", r->u.type.typname);
        } else
        {
            putf(" %u ", r->u.type.oid);
            put_e(r->u.type.nspname);
            lm_buf_u8(&out, '.');
            put_e(r->u.type.typname);
        }
        break;
    case LM_REC_ORIGIN:
        if (json) {
            json_lsn("lsn", r->u.origin.lsn);
            json_string("name", r->u.origin.name);
        } else {
            put_s(" \"");
            put_e(r->u.origin.name);
            put_s("\" at ");
            put_lsn(r->u.origin.lsn);
        }
        break;
    case LM_REC_BEGIN:
        if (json) {
            json_lsn("commit_lsn", r->u.begin.final_lsn);
            json_time("commit_time", r->u.begin.commit_ts);
            putf(",\"xid\":%u", r->u.begin.xid);
        } else {
            put_s(" ");
            put_lsn(r->u.begin.final_lsn);
            putf(" xid %u at ", r->u.begin.xid);
            put_time(r->u.begin.commit_ts);
        }
        break;
    case LM_REC_COMMIT:
        if (json) {
            json_lsn("commit_lsn", r->u.commit.commit_lsn);
            json_lsn("end_lsn", r->u.commit.end_lsn);
            json_time("commit_time", r->u.commit.commit_ts);
        } else {
            put_s(" ");
            put_lsn(r->u.commit.commit_lsn);
            put_s(" end ");
            put_lsn(r->u.commit.end_lsn);
            put_s(" at ");
            put_time(r->u.commit.commit_ts);
        }
        break;
    case LM_REC_INSERT:
        e = lm_relcache_get(rc, r->u.insert.relid);
        if (json) {
            json_rel("table", e, r->u.insert.relid);
            json_key("new");
            json_tuple(e, &r->u.insert.newtup);
        } else {
            lm_buf_u8(&out, ' ');
            put_e(relname_or(e, tmp, r->u.insert.relid));
            lm_buf_u8(&out, ':');
            text_tuple(e, &r->u.insert.newtup);
        }
        break;
    case LM_REC_UPDATE:
        e = lm_relcache_get(rc, r->u.update.relid);
        if (json) {
            json_rel("table", e, r->u.update.relid);
            if (r->u.update.oldkind) {
                json_key(r->u.update.oldkind == 'K' ? "old_key" : "old");
                json_tuple(e, &r->u.update.oldtup);
            }
            json_key("new");
            json_tuple(e, &r->u.update.newtup);
        } else {
            lm_buf_u8(&out, ' ');
            put_e(relname_or(e, tmp, r->u.update.relid));
            lm_buf_u8(&out, ':');
            if (r->u.update.oldkind) {
                put_s(r->u.update.oldkind == 'K' ? " old-key:" : " old:");
                text_tuple(e, &r->u.update.oldtup);
                put_s(" new:");
            }
            text_tuple(e, &r->u.update.newtup);
        }
        break;
    case LM_REC_DELETE:
        e = lm_relcache_get(rc, r->u.del.relid);
        if (json) {
            json_rel("table", e, r->u.del.relid);
            json_key(r->u.del.oldkind == 'K' ? "old_key" : "old");
            json_tuple(e, &r->u.del.oldtup);
        } else {
            lm_buf_u8(&out, ' ');
            put_e(relname_or(e, tmp, r->u.del.relid));
            put_s(r->u.del.oldkind == 'K' ? ": key:" : ": old:");
            text_tuple(e, &r->u.del.oldtup);
        }
        break;
    case LM_REC_TRUNCATE:
        if (json) {
            putf(",\"cascade\":%s,\"restart_identity\":%s,\"tables\":[",
                 (r->u.truncate.flags & LM_TRUNCATE_CASCADE) ? "true" : "false",
                 (r->u.truncate.flags & LM_TRUNCATE_RESTART_IDENTITY) ? "true" : "false");
            for (uint32_t i = 0; i < r->u.truncate.nrels; i++) {
                lm_relentry *t = lm_relcache_get(rc, r->u.truncate.relids[i]);
                const char *n = relname_or(t, tmp, r->u.truncate.relids[i]);
                if (i)
                    lm_buf_u8(&out, ',');
                json_str(n, strlen(n));
            }
            put_s("]");
        } else {
            for (uint32_t i = 0; i < r->u.truncate.nrels; i++) {
                lm_relentry *t = lm_relcache_get(rc, r->u.truncate.relids[i]);
                lm_buf_u8(&out, ' ');
                put_e(relname_or(t, tmp, r->u.truncate.relids[i]));
            }
            if (r->u.truncate.flags & LM_TRUNCATE_CASCADE)
                put_s(" cascade");
            if (r->u.truncate.flags & LM_TRUNCATE_RESTART_IDENTITY)
                put_s(" restart_identity");
        }
        break;
    case LM_REC_MESSAGE:
        if (json) {
            putf(",\"transactional\":%s", (r->u.message.flags & 1) ? "true" : "false");
            json_lsn("lsn", r->u.message.lsn);
            json_string("prefix", r->u.message.prefix);
            json_key("content");
            json_str(r->u.message.content, r->u.message.len);
        } else {
            putf(" %s ", (r->u.message.flags & 1) ? "transactional" : "non-transactional");
            put_lsn(r->u.message.lsn);
            put_s(" prefix \"");
            put_e(r->u.message.prefix);
            put_s("\" content ");
            text_quoted(r->u.message.content, r->u.message.len);
        }
        break;
    case LM_REC_DDL: {
        /* one list for both outputs: JSON has every field, in this order;
         * text the tag and those with a label */
        const struct { const char *key, *label, *val; } f[] = {
            {"tag", "", r->u.ddl.tag},
            {"role", " role ", r->u.ddl.role},
            {"session_role", NULL, r->u.ddl.session_role},
            {"search_path", " search_path ", r->u.ddl.search_path},
            {"command", " command ", r->u.ddl.command},
            {"objects", NULL, r->u.ddl.objects},
        };
        putf(json ? ",\"seq\":%" PRIu64 : " %" PRIu64 " ", r->u.ddl.seq);
        for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
            if (json) {
                json_string(f[i].key, f[i].val);
            } else if (f[i].label) {
                put_s(f[i].label);
                text_quoted((const uint8_t *)f[i].val, strlen(f[i].val));
            }
        }
        break;
    }
    case LM_REC_POSITION:
        if (json) {
            json_lsn("lsn", r->u.position.lsn);
            json_time("time", r->u.position.time);
        } else {
            put_s(" ");
            put_lsn(r->u.position.lsn);
        }
        break;
    case LM_REC_ARCHIVE:
        if (json)
            putf(",\"seq\":%u,\"last\":%s,\"bytes\":%u", r->u.archive.seq,
                 r->u.archive.last ? "true" : "false", r->u.archive.len);
        else
            putf(" part %u%s %u bytes", r->u.archive.seq, r->u.archive.last ? " (last)" : "",
                 r->u.archive.len);
        break;
    case LM_REC_COPY_BEGIN:
        if (json) {
            json_string("schema", r->u.copy_begin.nspname);
            json_string("table", r->u.copy_begin.relname);
            putf(",\"chunk\":%u,\"chunks\":%u,\"format\":\"%s\"", r->u.copy_begin.chunk,
                 r->u.copy_begin.nchunks, r->u.copy_begin.format == 'b' ? "binary" : "text");
            json_lsn("sync_lsn", r->u.copy_begin.sync_lsn);
            json_string("columns", r->u.copy_begin.columns);
        } else {
            lm_buf_u8(&out, ' ');
            put_e(r->u.copy_begin.nspname);
            lm_buf_u8(&out, '.');
            put_e(r->u.copy_begin.relname);
            putf(" chunk %u/%u %s sync ", r->u.copy_begin.chunk + 1, r->u.copy_begin.nchunks,
                 r->u.copy_begin.format == 'b' ? "binary" : "text");
            put_lsn(r->u.copy_begin.sync_lsn);
        }
        break;
    case LM_REC_COPY_DATA:
        if (json)
            putf(",\"bytes\":%u", r->u.copy_data.len);
        else
            putf(" %u bytes", r->u.copy_data.len);
        break;
    case LM_REC_COPY_END:
        if (json)
            putf(",\"rows\":%" PRIu64 ",\"bytes\":%" PRIu64, r->u.copy_end.rows, r->u.copy_end.bytes);
        else
            putf(" %" PRIu64 " rows %" PRIu64 " bytes", r->u.copy_end.rows, r->u.copy_end.bytes);
        break;
    case LM_REC_TRAILER:
        if (json) {
            json_lsn("last_lsn", r->u.trailer.last_lsn);
            putf(",\"records\":%" PRIu64, r->u.trailer.records);
        } else {
            put_s(" last ");
            put_lsn(r->u.trailer.last_lsn);
            putf(" records %" PRIu64, r->u.trailer.records);
        }
        break;
    case LM_REC_END:
        if (json) {
            json_string("reason", lm_end_reason_name(r->u.end.reason));
            json_lsn("lsn", r->u.end.lsn);
            if (*r->u.end.detail)
                json_string("detail", r->u.end.detail);
        } else {
            putf(" %s at ", lm_end_reason_name(r->u.end.reason));
            put_lsn(r->u.end.lsn);
            if (*r->u.end.detail)
            {
                put_s(" (");
                put_e(r->u.end.detail);
                lm_buf_u8(&out, ')');
            }
        }
        break;
    }
    put_s(json ? "}\n" : "\n");
    flush_out(false);
}

static uint32_t record_relid(const lm_record *r)
{
    switch (r->type) {
    case LM_REC_RELATION: return r->u.rel.relid;
    case LM_REC_INSERT: return r->u.insert.relid;
    case LM_REC_UPDATE: return r->u.update.relid;
    case LM_REC_DELETE: return r->u.del.relid;
    default: return 0;
    }
}

static void count(const lm_record *r, lm_relcache *rc, size_t size)
{
    st.records++;
    st.bytes += size;
    st.by_type[r->type & 127]++;
    st.bytes_by_type[r->type & 127] += size;
    switch (r->type) {
    case LM_REC_COMMIT:
        st.xacts++;
        if (!st.first_commit)
            st.first_commit = r->u.commit.commit_lsn;
        st.last_commit = r->u.commit.commit_lsn;
        break;
    case LM_REC_INSERT:
    case LM_REC_UPDATE:
    case LM_REC_DELETE: {
        lm_relentry *e = lm_relcache_get(rc, record_relid(r));
        tabstat *t;
        if (!table_selected(e))
            break;
        t = tab_stat(e);
        if (r->type == LM_REC_INSERT) t->ins++;
        else if (r->type == LM_REC_UPDATE) t->upd++;
        else t->del++;
        t->bytes += size;
        break;
    }
    case LM_REC_TRUNCATE:
        for (uint32_t i = 0; i < r->u.truncate.nrels; i++) {
            lm_relentry *e = lm_relcache_get(rc, r->u.truncate.relids[i]);
            if (table_selected(e))
                tab_stat(e)->trunc++;
        }
        break;
    }
}

static void print_stats(void)
{
    char a[LM_LSN_BUFSZ], b[LM_LSN_BUFSZ];
    printf("records:      %" PRIu64 "\n", st.records);
    printf("bytes:        %" PRIu64 " (uncompressed records)\n", st.bytes);
    printf("transactions: %" PRIu64 "\n", st.xacts);
    if (st.by_type[LM_REC_DDL])
        printf("ddl:          %" PRIu64 " (schema changes)\n", st.by_type[LM_REC_DDL]);
    if (st.xacts)
        printf("commits:      %s .. %s\n", lm_lsn_format(st.first_commit, a),
               lm_lsn_format(st.last_commit, b));
    printf("\n%-12s %12s %14s\n", "record", "count", "bytes");
    for (int t = 0; t < 128; t++)
        if (st.by_type[t])
            printf("%-12s %12" PRIu64 " %14" PRIu64 "\n", lm_rectype_name((uint8_t)t),
                   st.by_type[t], st.bytes_by_type[t]);
    if (st.ntabs) {
        printf("\n%-40s %10s %10s %10s %9s %12s\n", "table", "insert", "update", "delete",
               "truncate", "bytes");
        for (size_t i = 0; i < st.ntabs; i++) {
            char *name = esc_dup(st.tabs[i].name);
            printf("%-40s %10" PRIu64 " %10" PRIu64 " %10" PRIu64 " %9" PRIu64 " %12" PRIu64 "\n",
                   name, st.tabs[i].ins, st.tabs[i].upd, st.tabs[i].del,
                   st.tabs[i].trunc, st.tabs[i].bytes);
            free(name);
        }
    }
}

/* Records that belong to a transaction: --from and --to select them by the
 * transaction's commit LSN. */
static bool in_transaction(uint8_t type)
{
    return strchr("BCIUDTMOS", type) != NULL && type != 0;
}

static bool filtered_out(const lm_record *rec, lm_relcache *rc, bool in_range)
{
    if (ntables) {
        bool show = false;
        if (rec->type == LM_REC_TRUNCATE) {
            for (uint32_t k = 0; k < rec->u.truncate.nrels; k++)
                show |= table_selected(lm_relcache_get(rc, rec->u.truncate.relids[k]));
        } else if (record_relid(rec))
            show = table_selected(lm_relcache_get(rc, record_relid(rec)));
        if (!show)
            return true;
    }
    if (from_set || to_set) {
        if (in_transaction(rec->type))
            return !in_range;
        if (rec->type == LM_REC_POSITION)
            return rec->u.position.lsn < from_lsn || rec->u.position.lsn > to_lsn;
    }
    return false;
}

int main(int argc, char **argv)
{
    enum { OPT_JSON = LM_OPT_OWN, OPT_STATS, OPT_VERIFY, OPT_FROM, OPT_TO };
    static const struct option longopts[] = {
        {"json", no_argument, NULL, OPT_JSON},
        {"stats", no_argument, NULL, OPT_STATS},
        {"verify", no_argument, NULL, OPT_VERIFY},
        {"table", required_argument, NULL, 't'},
        {"from", required_argument, NULL, OPT_FROM},
        {"to", required_argument, NULL, OPT_TO},
        {"quiet", no_argument, NULL, 'q'},
        LM_OPTIONS_COMMON,
        {NULL, 0, NULL, 0}};
    int c, nmodes = 0;
    lm_reader *rd = NULL;
    lm_relcache *rc;
    lm_record rec;
    int rc_read = 0;
    uint8_t last_type = 0, end_reason = 0;
    bool in_range = true;
    const char **files;
    int nfiles;

    lm_program_start(argc, argv, usage);
    while ((c = getopt_long(argc, argv, "t:qV", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_JSON: mode = MODE_JSON; nmodes++; break;
        case OPT_STATS: mode = MODE_STATS; nmodes++; break;
        case OPT_VERIFY: mode = MODE_VERIFY; nmodes++; break;
        case 't':
            tables = lm_realloc(tables, (size_t)(ntables + 1) * sizeof *tables);
            tables[ntables++] = optarg;
            break;
        case OPT_FROM: from_lsn = lm_opt_lsn("--from", optarg); from_set = true; break;
        case OPT_TO: to_lsn = lm_opt_lsn("--to", optarg); to_set = true; break;
        case 'q': lm_log_set_level(LM_LOG_ERROR); break;
        default: lm_program_option(c);
        }
    }
    if (nmodes > 1)
        lm_usage_error("--json, --stats and --verify cannot be combined");
    if (from_set && to_set && from_lsn > to_lsn)
        lm_usage_error("--from must not be after --to");

    nfiles = argc - optind;
    files = (const char **)(argv + optind);
    if (nfiles == 0) {
        static const char *dash[] = {"-"};
        files = dash;
        nfiles = 1;
    }
    rc = lm_relcache_new(NULL);
    for (int i = 0; i < nfiles; i++) {
        const char *name = files[i];
        bool is_stdin = strcmp(name, "-") == 0;
        int fd = 0;
        if (!is_stdin && (fd = open(name, O_RDONLY)) < 0) {
            int err = errno;
            lm_fatal(LM_EXIT_IO, "could not open \"%s\": %s", esc_dup(name), strerror(err));
        }
        if (!rd)
            rd = lm_reader_new(fd, is_stdin ? "standard input" : name);
        else
            lm_reader_reset_input(rd, fd, is_stdin ? "standard input" : name);
        while ((rc_read = lm_reader_next(rd, &rec)) > 0) {
            last_type = rec.type;
            if (rec.type == LM_REC_RELATION)
                lm_relcache_put(rc, &rec.u.rel);
            else if (rec.type == LM_REC_END)
                end_reason = rec.u.end.reason;
            else if (rec.type == LM_REC_BEGIN)
                in_range = rec.u.begin.final_lsn >= from_lsn && rec.u.begin.final_lsn <= to_lsn;
            if (mode == MODE_VERIFY)
                continue;
            if (mode == MODE_STATS) {
                /* truncates and messages outside --from/--to count no more than rows */
                if (in_range || !in_transaction(rec.type))
                    count(&rec, rc, lm_reader_record_size(rd));
                continue;
            }
            if (!filtered_out(&rec, rc, in_range))
                render(&rec, rc, lm_reader_record_offset(rd));
        }
        if (fd > 0)
            close(fd);
        if (rc_read < 0)
            break;
    }
    flush_out(true);
    if (fflush(stdout) != 0 || ferror(stdout))
        lm_fatal(LM_EXIT_IO, "could not write to standard output: %s", strerror(errno));
    if (rc_read < 0) {
        /* the message may hold a file name or the stream's own strings */
        char *msg = esc_dup(lm_reader_error(rd));
        lm_error("%s", msg);
        free(msg);
        int code = lm_reader_errcode(rd);
        lm_relcache_free(rc);
        lm_reader_free(rd);
        return code;
    }
    if (mode == MODE_STATS)
        print_stats();
    if (last_type != LM_REC_END && last_type != LM_REC_TRAILER) {
        char *name = esc_dup(lm_reader_name(rd));
        if (last_type == 0)
            lm_error("%s: empty stream: no header, no records", name);
        else
            lm_error("%s: stream ends at offset %" PRIu64 " without an end record or segment "
                     "trailer (truncated?)", name,
                     lm_reader_record_offset(rd) + lm_reader_record_size(rd));
        free(name);
        lm_relcache_free(rc);
        lm_reader_free(rd);
        return LM_EXIT_TRUNCATED;
    }
    if (mode == MODE_VERIFY) {
        const lm_record *h = lm_reader_header(rd);
        char *slot = esc_dup(h ? h->u.header.slot : "");
        printf("ok: %d file%s, system %" PRIu64 ", slot \"%s\", ends with %s%s%s\n", nfiles,
               nfiles == 1 ? "" : "s", h ? h->u.header.sysid : 0, slot,
               last_type == LM_REC_END ? "end record" : "segment trailer",
               last_type == LM_REC_END ? ": " : "",
               last_type == LM_REC_END ? lm_end_reason_name(end_reason) : "");
        free(slot);
    }
    lm_relcache_free(rc);
    lm_reader_free(rd);
    return 0;
}
