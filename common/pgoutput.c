#include <stdio.h>
#include <string.h>

#include "pgoutput.h"

static int fail(char *err, size_t errlen, const char *what, uint8_t type)
{
    snprintf(err, errlen, "malformed pgoutput %s message ('%c')", what, type);
    return -1;
}

static bool get_i32(lm_cursor *c, uint32_t *v) { return lm_cur_be32(c, v); }

static bool get_tuple(lm_cursor *c, lm_arena *a, lm_tuple *t)
{
    uint16_t n;
    if (!lm_cur_be16(c, &n) || n > 1664)
        return c->ok = false;
    t->ncols = n;
    t->cols = lm_arena_alloc(a, sizeof(lm_value) * (n ? n : 1));
    for (uint16_t i = 0; i < n; i++) {
        uint8_t kind;
        lm_value *v = &t->cols[i];
        if (!lm_cur_u8(c, &kind))
            return false;
        v->kind = (char)kind;
        v->len = 0;
        v->data = NULL;
        if (kind == 't' || kind == 'b') {
            uint32_t len;
            if (!get_i32(c, &len) || !lm_cur_raw(c, len, &v->data))
                return c->ok = false;
            v->len = len;
        } else if (kind != 'n' && kind != 'u')
            return c->ok = false;
    }
    return true;
}

static bool get_str(lm_cursor *c, lm_arena *a, const char **s)
{
    const char *p;
    if (!lm_cur_cstr(c, &p))
        return false;
    *s = lm_arena_strndup(a, p, strlen(p));
    return true;
}

int lm_pgoutput_parse(const uint8_t *msg, size_t len, lm_record *r, lm_arena *a, char *err,
                      size_t errlen)
{
    lm_cursor cur, *c = &cur;
    uint8_t type, u8;
    uint32_t u32;
    uint64_t u64;

    lm_cursor_init(c, msg, len);
    memset(r, 0, sizeof *r);
    if (!lm_cur_u8(c, &type)) {
        snprintf(err, errlen, "empty pgoutput message");
        return -1;
    }
    switch (type) {
    case 'B':
        r->type = LM_REC_BEGIN;
        lm_cur_be64(c, &r->u.begin.final_lsn);
        lm_cur_be64(c, &u64);
        r->u.begin.commit_ts = (int64_t)u64;
        get_i32(c, &r->u.begin.xid);
        if (!c->ok) return fail(err, errlen, "begin", type);
        break;
    case 'C':
        r->type = LM_REC_COMMIT;
        lm_cur_u8(c, &r->u.commit.flags);
        lm_cur_be64(c, &r->u.commit.commit_lsn);
        lm_cur_be64(c, &r->u.commit.end_lsn);
        lm_cur_be64(c, &u64);
        r->u.commit.commit_ts = (int64_t)u64;
        if (!c->ok) return fail(err, errlen, "commit", type);
        break;
    case 'O':
        r->type = LM_REC_ORIGIN;
        lm_cur_be64(c, &r->u.origin.lsn);
        get_str(c, a, &r->u.origin.name);
        if (!c->ok) return fail(err, errlen, "origin", type);
        break;
    case 'R': {
        uint16_t natts;
        r->type = LM_REC_RELATION;
        get_i32(c, &r->u.rel.relid);
        get_str(c, a, &r->u.rel.nspname);
        get_str(c, a, &r->u.rel.relname);
        lm_cur_u8(c, &u8);
        r->u.rel.replident = (char)u8;
        if (!lm_cur_be16(c, &natts) || natts > 1664)
            return fail(err, errlen, "relation", type);
        r->u.rel.natts = natts;
        r->u.rel.cols = lm_arena_alloc(a, sizeof(lm_column) * (natts ? natts : 1));
        for (uint16_t i = 0; i < natts && c->ok; i++) {
            lm_column *col = &r->u.rel.cols[i];
            lm_cur_u8(c, &col->flags);
            get_str(c, a, &col->name);
            get_i32(c, &col->typoid);
            get_i32(c, &u32);
            col->typmod = (int32_t)u32;
        }
        if (!c->ok) return fail(err, errlen, "relation", type);
        if (r->u.rel.nspname[0] == '\0')
            r->u.rel.nspname = "pg_catalog";
        break;
    }
    case 'Y':
        r->type = LM_REC_TYPE;
        get_i32(c, &r->u.type.oid);
        get_str(c, a, &r->u.type.nspname);
        get_str(c, a, &r->u.type.typname);
        if (!c->ok) return fail(err, errlen, "type", type);
        break;
    case 'I':
        r->type = LM_REC_INSERT;
        get_i32(c, &r->u.insert.relid);
        if (!lm_cur_u8(c, &u8) || u8 != 'N' || !get_tuple(c, a, &r->u.insert.newtup))
            return fail(err, errlen, "insert", type);
        break;
    case 'U':
        r->type = LM_REC_UPDATE;
        get_i32(c, &r->u.update.relid);
        if (!lm_cur_u8(c, &u8))
            return fail(err, errlen, "update", type);
        if (u8 == 'K' || u8 == 'O') {
            r->u.update.oldkind = (char)u8;
            if (!get_tuple(c, a, &r->u.update.oldtup) || !lm_cur_u8(c, &u8))
                return fail(err, errlen, "update", type);
        }
        if (u8 != 'N' || !get_tuple(c, a, &r->u.update.newtup))
            return fail(err, errlen, "update", type);
        break;
    case 'D':
        r->type = LM_REC_DELETE;
        get_i32(c, &r->u.del.relid);
        if (!lm_cur_u8(c, &u8) || (u8 != 'K' && u8 != 'O'))
            return fail(err, errlen, "delete", type);
        r->u.del.oldkind = (char)u8;
        if (!get_tuple(c, a, &r->u.del.oldtup))
            return fail(err, errlen, "delete", type);
        break;
    case 'T':
        r->type = LM_REC_TRUNCATE;
        get_i32(c, &r->u.truncate.nrels);
        lm_cur_u8(c, &r->u.truncate.flags);
        if (!c->ok || r->u.truncate.nrels > lm_cursor_left(c) / 4)
            return fail(err, errlen, "truncate", type);
        r->u.truncate.relids = lm_arena_alloc(a, sizeof(uint32_t) * (r->u.truncate.nrels + 1));
        for (uint32_t i = 0; i < r->u.truncate.nrels; i++)
            get_i32(c, &r->u.truncate.relids[i]);
        if (!c->ok) return fail(err, errlen, "truncate", type);
        break;
    case 'M':
        r->type = LM_REC_MESSAGE;
        lm_cur_u8(c, &r->u.message.flags);
        lm_cur_be64(c, &r->u.message.lsn);
        get_str(c, a, &r->u.message.prefix);
        if (!get_i32(c, &u32) || !lm_cur_raw(c, u32, &r->u.message.content))
            return fail(err, errlen, "message", type);
        r->u.message.len = u32;
        break;
    case 'S': case 'E': case 'c': case 'A': case 'b': case 'P': case 'K': case 'r':
        snprintf(err, errlen, "pgoutput message '%c' (streamed or two-phase transaction) is not "
                 "handled: lm-decode does not ask for streaming or two-phase", type);
        return -1;
    default:
        snprintf(err, errlen, "unknown pgoutput message type 0x%02x", type);
        return -1;
    }
    return 0;
}
