#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "record.h"

/* The ddl record's six strings after its seq, in the order lm-format(5)
 * gives them: one list for the encoder and the decoder. */
static const size_t ddl_strings[] = {
    offsetof(lm_record, u.ddl.tag), offsetof(lm_record, u.ddl.search_path),
    offsetof(lm_record, u.ddl.role), offsetof(lm_record, u.ddl.session_role),
    offsetof(lm_record, u.ddl.command), offsetof(lm_record, u.ddl.objects),
};
#define NDDL_STRINGS (sizeof ddl_strings / sizeof ddl_strings[0])

static void put_tuple(lm_buf *b, const lm_tuple *t)
{
    lm_buf_varint(b, t->ncols);
    for (uint32_t i = 0; i < t->ncols; i++) {
        const lm_value *v = &t->cols[i];
        lm_buf_u8(b, (uint8_t)v->kind);
        if (v->kind == 't' || v->kind == 'b')
            lm_buf_bytes(b, v->data, v->len);
    }
}

void lm_record_encode(lm_buf *b, const lm_record *r)
{
    switch (r->type) {
    case LM_REC_HEADER:
        lm_buf_varint(b, r->u.header.version);
        lm_buf_be64(b, r->u.header.sysid);
        lm_buf_varint(b, r->u.header.timeline);
        lm_buf_varint(b, r->u.header.server_version);
        lm_buf_str(b, r->u.header.dbname);
        lm_buf_str(b, r->u.header.slot);
        lm_buf_str(b, r->u.header.publication);
        lm_buf_str(b, r->u.header.encoding);
        lm_buf_str(b, r->u.header.producer);
        lm_buf_varint(b, r->u.header.start_lsn);
        lm_buf_svarint(b, r->u.header.created);
        break;
    case LM_REC_RELATION:
        lm_buf_varint(b, r->u.rel.relid);
        lm_buf_str(b, r->u.rel.nspname);
        lm_buf_str(b, r->u.rel.relname);
        lm_buf_u8(b, (uint8_t)r->u.rel.replident);
        lm_buf_varint(b, r->u.rel.natts);
        for (uint32_t i = 0; i < r->u.rel.natts; i++) {
            const lm_column *c = &r->u.rel.cols[i];
            lm_buf_u8(b, c->flags);
            lm_buf_str(b, c->name);
            lm_buf_varint(b, c->typoid);
            lm_buf_svarint(b, c->typmod);
        }
        break;
    case LM_REC_TYPE:
        lm_buf_varint(b, r->u.type.oid);
        lm_buf_str(b, r->u.type.nspname);
        lm_buf_str(b, r->u.type.typname);
        break;
    case LM_REC_ORIGIN:
        lm_buf_varint(b, r->u.origin.lsn);
        lm_buf_str(b, r->u.origin.name);
        break;
    case LM_REC_BEGIN:
        lm_buf_varint(b, r->u.begin.final_lsn);
        lm_buf_svarint(b, r->u.begin.commit_ts);
        lm_buf_varint(b, r->u.begin.xid);
        break;
    case LM_REC_COMMIT:
        lm_buf_u8(b, r->u.commit.flags);
        lm_buf_varint(b, r->u.commit.commit_lsn);
        lm_buf_svarint(b, (int64_t)(r->u.commit.end_lsn - r->u.commit.commit_lsn));
        lm_buf_svarint(b, r->u.commit.commit_ts);
        break;
    case LM_REC_INSERT:
        lm_buf_varint(b, r->u.insert.relid);
        put_tuple(b, &r->u.insert.newtup);
        break;
    case LM_REC_UPDATE:
        lm_buf_varint(b, r->u.update.relid);
        lm_buf_u8(b, (uint8_t)r->u.update.oldkind);
        if (r->u.update.oldkind)
            put_tuple(b, &r->u.update.oldtup);
        put_tuple(b, &r->u.update.newtup);
        break;
    case LM_REC_DELETE:
        lm_buf_varint(b, r->u.del.relid);
        lm_buf_u8(b, (uint8_t)r->u.del.oldkind);
        put_tuple(b, &r->u.del.oldtup);
        break;
    case LM_REC_TRUNCATE:
        lm_buf_u8(b, r->u.truncate.flags);
        lm_buf_varint(b, r->u.truncate.nrels);
        for (uint32_t i = 0; i < r->u.truncate.nrels; i++)
            lm_buf_varint(b, r->u.truncate.relids[i]);
        break;
    case LM_REC_MESSAGE:
        lm_buf_u8(b, r->u.message.flags);
        lm_buf_varint(b, r->u.message.lsn);
        lm_buf_str(b, r->u.message.prefix);
        lm_buf_bytes(b, r->u.message.content, r->u.message.len);
        break;
    case LM_REC_DDL:
        lm_buf_varint(b, r->u.ddl.seq);
        for (size_t i = 0; i < NDDL_STRINGS; i++)
            lm_buf_str(b, *(const char *const *)((const char *)r + ddl_strings[i]));
        break;
    case LM_REC_POSITION:
        lm_buf_varint(b, r->u.position.lsn);
        lm_buf_svarint(b, r->u.position.time);
        break;
    case LM_REC_ARCHIVE:
        lm_buf_varint(b, r->u.archive.seq);
        lm_buf_u8(b, r->u.archive.last);
        lm_buf_bytes(b, r->u.archive.data, r->u.archive.len);
        break;
    case LM_REC_COPY_BEGIN:
        lm_buf_str(b, r->u.copy_begin.nspname);
        lm_buf_str(b, r->u.copy_begin.relname);
        lm_buf_varint(b, r->u.copy_begin.chunk);
        lm_buf_varint(b, r->u.copy_begin.nchunks);
        lm_buf_u8(b, r->u.copy_begin.format);
        lm_buf_varint(b, r->u.copy_begin.sync_lsn);
        lm_buf_str(b, r->u.copy_begin.columns);
        break;
    case LM_REC_COPY_DATA:
        lm_buf_put(b, r->u.copy_data.data, r->u.copy_data.len);
        break;
    case LM_REC_COPY_END:
        lm_buf_varint(b, r->u.copy_end.rows);
        lm_buf_varint(b, r->u.copy_end.bytes);
        break;
    case LM_REC_TRAILER:
        lm_buf_varint(b, r->u.trailer.last_lsn);
        lm_buf_varint(b, r->u.trailer.records);
        break;
    case LM_REC_END:
        lm_buf_u8(b, r->u.end.reason);
        lm_buf_varint(b, r->u.end.lsn);
        lm_buf_str(b, r->u.end.detail);
        break;
    default:
        break;
    }
}

static bool get_str(lm_cursor *c, lm_arena *a, const char **s)
{
    const uint8_t *p;
    size_t n;
    if (!lm_cur_bytes(c, &p, &n))
        return false;
    *s = lm_arena_strndup(a, p, n);
    return true;
}

static bool get_u32(lm_cursor *c, uint32_t *v)
{
    uint64_t x;
    if (!lm_cur_varint(c, &x) || x > UINT32_MAX) {
        c->ok = false;
        return false;
    }
    *v = (uint32_t)x;
    return true;
}

static bool get_tuple(lm_cursor *c, lm_arena *a, lm_tuple *t)
{
    if (!get_u32(c, &t->ncols) || t->ncols > 1664 || t->ncols > lm_cursor_left(c)) {
        c->ok = false;
        return false;
    }
    t->cols = lm_arena_alloc(a, sizeof(lm_value) * (t->ncols ? t->ncols : 1));
    for (uint32_t i = 0; i < t->ncols; i++) {
        lm_value *v = &t->cols[i];
        uint8_t kind;
        if (!lm_cur_u8(c, &kind))
            return false;
        v->kind = (char)kind;
        v->len = 0;
        v->data = NULL;
        if (kind == 't' || kind == 'b') {
            size_t n;
            if (!lm_cur_bytes(c, &v->data, &n) || n > UINT32_MAX)
                return c->ok = false;
            v->len = (uint32_t)n;
        } else if (kind != 'n' && kind != 'u') {
            return c->ok = false;
        }
    }
    return true;
}

static bool get_oldkind(lm_cursor *c, char *kind)
{
    uint8_t k;
    if (!lm_cur_u8(c, &k))
        return false;
    if (k != 0 && k != 'K' && k != 'O')
        return c->ok = false;
    *kind = (char)k;
    return true;
}

bool lm_record_decode(uint8_t type, const uint8_t *body, size_t len, lm_record *r,
                      lm_arena *a)
{
    lm_cursor cur, *c = &cur;
    uint64_t x;
    int64_t sx;
    uint8_t u8;

    lm_cursor_init(c, body, len);
    memset(r, 0, sizeof *r);
    r->type = type;
    switch (type) {
    case LM_REC_HEADER:
        get_u32(c, &r->u.header.version);
        lm_cur_be64(c, &r->u.header.sysid);
        get_u32(c, &r->u.header.timeline);
        get_u32(c, &r->u.header.server_version);
        get_str(c, a, &r->u.header.dbname);
        get_str(c, a, &r->u.header.slot);
        get_str(c, a, &r->u.header.publication);
        get_str(c, a, &r->u.header.encoding);
        get_str(c, a, &r->u.header.producer);
        lm_cur_varint(c, &r->u.header.start_lsn);
        lm_cur_svarint(c, &r->u.header.created);
        break;
    case LM_REC_RELATION:
        get_u32(c, &r->u.rel.relid);
        get_str(c, a, &r->u.rel.nspname);
        get_str(c, a, &r->u.rel.relname);
        lm_cur_u8(c, &u8);
        r->u.rel.replident = (char)u8;
        get_u32(c, &r->u.rel.natts);
        if (!c->ok || r->u.rel.natts > 1664 || r->u.rel.natts > lm_cursor_left(c))
            return false;
        r->u.rel.cols = lm_arena_alloc(a, sizeof(lm_column) * (r->u.rel.natts + 1));
        for (uint32_t i = 0; i < r->u.rel.natts && c->ok; i++) {
            lm_column *col = &r->u.rel.cols[i];
            lm_cur_u8(c, &col->flags);
            get_str(c, a, &col->name);
            get_u32(c, &col->typoid);
            lm_cur_svarint(c, &sx);
            col->typmod = (int32_t)sx;
        }
        break;
    case LM_REC_TYPE:
        get_u32(c, &r->u.type.oid);
        get_str(c, a, &r->u.type.nspname);
        get_str(c, a, &r->u.type.typname);
        break;
    case LM_REC_ORIGIN:
        lm_cur_varint(c, &r->u.origin.lsn);
        get_str(c, a, &r->u.origin.name);
        break;
    case LM_REC_BEGIN:
        lm_cur_varint(c, &r->u.begin.final_lsn);
        lm_cur_svarint(c, &r->u.begin.commit_ts);
        get_u32(c, &r->u.begin.xid);
        break;
    case LM_REC_COMMIT:
        lm_cur_u8(c, &r->u.commit.flags);
        lm_cur_varint(c, &r->u.commit.commit_lsn);
        lm_cur_svarint(c, &sx);
        r->u.commit.end_lsn = r->u.commit.commit_lsn + (uint64_t)sx;
        lm_cur_svarint(c, &r->u.commit.commit_ts);
        break;
    case LM_REC_INSERT:
        get_u32(c, &r->u.insert.relid);
        get_tuple(c, a, &r->u.insert.newtup);
        break;
    case LM_REC_UPDATE:
        get_u32(c, &r->u.update.relid);
        get_oldkind(c, &r->u.update.oldkind);
        if (c->ok && r->u.update.oldkind)
            get_tuple(c, a, &r->u.update.oldtup);
        get_tuple(c, a, &r->u.update.newtup);
        break;
    case LM_REC_DELETE:
        get_u32(c, &r->u.del.relid);
        get_oldkind(c, &r->u.del.oldkind);
        if (c->ok && r->u.del.oldkind == 0)
            return false;
        get_tuple(c, a, &r->u.del.oldtup);
        break;
    case LM_REC_TRUNCATE:
        lm_cur_u8(c, &r->u.truncate.flags);
        get_u32(c, &r->u.truncate.nrels);
        if (!c->ok || r->u.truncate.nrels > lm_cursor_left(c))
            return false;
        r->u.truncate.relids = lm_arena_alloc(a, sizeof(uint32_t) * (r->u.truncate.nrels + 1));
        for (uint32_t i = 0; i < r->u.truncate.nrels; i++)
            get_u32(c, &r->u.truncate.relids[i]);
        break;
    case LM_REC_MESSAGE: {
        const uint8_t *p;
        size_t n = 0;
        lm_cur_u8(c, &r->u.message.flags);
        lm_cur_varint(c, &r->u.message.lsn);
        get_str(c, a, &r->u.message.prefix);
        if (lm_cur_bytes(c, &p, &n) && n <= UINT32_MAX) {
            r->u.message.content = p;
            r->u.message.len = (uint32_t)n;
        }
        break;
    }
    case LM_REC_DDL:
        lm_cur_varint(c, &r->u.ddl.seq);
        for (size_t i = 0; i < NDDL_STRINGS; i++)
            get_str(c, a, (const char **)((char *)r + ddl_strings[i]));
        break;
    case LM_REC_POSITION:
        lm_cur_varint(c, &r->u.position.lsn);
        lm_cur_svarint(c, &r->u.position.time);
        break;
    case LM_REC_ARCHIVE: {
        const uint8_t *p;
        size_t n = 0;
        get_u32(c, &r->u.archive.seq);
        lm_cur_u8(c, &r->u.archive.last);
        if (lm_cur_bytes(c, &p, &n) && n <= UINT32_MAX) {
            r->u.archive.data = p;
            r->u.archive.len = (uint32_t)n;
        }
        break;
    }
    case LM_REC_COPY_BEGIN:
        get_str(c, a, &r->u.copy_begin.nspname);
        get_str(c, a, &r->u.copy_begin.relname);
        get_u32(c, &r->u.copy_begin.chunk);
        get_u32(c, &r->u.copy_begin.nchunks);
        lm_cur_u8(c, &r->u.copy_begin.format);
        lm_cur_varint(c, &r->u.copy_begin.sync_lsn);
        get_str(c, a, &r->u.copy_begin.columns);
        if (c->ok && r->u.copy_begin.format != 't' && r->u.copy_begin.format != 'b')
            return false;
        break;
    case LM_REC_COPY_DATA:
        if (len > UINT32_MAX)
            return false;
        r->u.copy_data.data = body;
        r->u.copy_data.len = (uint32_t)len;
        c->p = c->end;
        break;
    case LM_REC_COPY_END:
        lm_cur_varint(c, &r->u.copy_end.rows);
        lm_cur_varint(c, &r->u.copy_end.bytes);
        break;
    case LM_REC_TRAILER:
        lm_cur_varint(c, &r->u.trailer.last_lsn);
        lm_cur_varint(c, &r->u.trailer.records);
        break;
    case LM_REC_END:
        lm_cur_u8(c, &r->u.end.reason);
        lm_cur_varint(c, &x);
        r->u.end.lsn = x;
        get_str(c, a, &r->u.end.detail);
        break;
    default:
        /* unknown: the caller decides by lm_rectype_critical */
        return true;
    }
    /* trailing bytes are tolerated: a later minor version may append fields */
    return c->ok;
}

bool lm_rectype_known(uint8_t type)
{
    return strchr("HRYOBCIUDTMSPAGWJZE", type) != NULL && type != 0;
}

const char *lm_rectype_name(uint8_t type)
{
    switch (type) {
    case LM_REC_HEADER: return "header";
    case LM_REC_RELATION: return "relation";
    case LM_REC_TYPE: return "type";
    case LM_REC_ORIGIN: return "origin";
    case LM_REC_BEGIN: return "begin";
    case LM_REC_COMMIT: return "commit";
    case LM_REC_INSERT: return "insert";
    case LM_REC_UPDATE: return "update";
    case LM_REC_DELETE: return "delete";
    case LM_REC_TRUNCATE: return "truncate";
    case LM_REC_MESSAGE: return "message";
    case LM_REC_DDL: return "ddl";
    case LM_REC_POSITION: return "position";
    case LM_REC_ARCHIVE: return "archive";
    case LM_REC_COPY_BEGIN: return "copy_begin";
    case LM_REC_COPY_DATA: return "copy_data";
    case LM_REC_COPY_END: return "copy_end";
    case LM_REC_TRAILER: return "trailer";
    case LM_REC_END: return "end";
    default: return "unknown";
    }
}

const char *lm_end_reason_name(uint8_t reason)
{
    switch (reason) {
    case LM_END_ENDPOS: return "endpos";
    case LM_END_MARKER: return "marker";
    case LM_END_SHUTDOWN: return "shutdown";
    case LM_END_COMPLETE: return "complete";
    default: return "unknown";
    }
}

lm_relation lm_relation_dup(const lm_relation *rel)
{
    lm_relation d = *rel;
    size_t size = strlen(rel->nspname) + strlen(rel->relname) + 2;
    char *p;

    for (uint32_t i = 0; i < rel->natts; i++)
        size += strlen(rel->cols[i].name) + 1;
    d.names = p = lm_malloc(size);
    d.nspname = p;
    p = stpcpy(p, rel->nspname) + 1;
    d.relname = p;
    p = stpcpy(p, rel->relname) + 1;
    d.cols = lm_malloc(sizeof *d.cols * rel->natts);
    for (uint32_t i = 0; i < rel->natts; i++) {
        d.cols[i] = rel->cols[i];
        d.cols[i].name = p;
        p = stpcpy(p, rel->cols[i].name) + 1;
    }
    return d;
}

void lm_relation_free(lm_relation *rel)
{
    free(rel->cols);
    free(rel->names);
    rel->cols = NULL;
    rel->names = NULL;
    rel->nspname = rel->relname = NULL;
    rel->natts = 0;
}
