/* The change format's records (man/lm-format.5): their types, an in-memory
 * form, and the encoder and decoder of one record body. Framing (blocks,
 * checksums, zstd) lives in stream.h. */
#ifndef LM_RECORD_H
#define LM_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define LM_FORMAT_VERSION 1

/* Record types. Upper case: a reader must understand it. Lower case: a
 * reader that does not know it may skip it. */
enum lm_rectype {
    LM_REC_HEADER = 'H',     /* stream header: source system, database, slot */
    LM_REC_RELATION = 'R',   /* a table's definition, before first use */
    LM_REC_TYPE = 'Y',       /* a non-builtin type's name */
    LM_REC_ORIGIN = 'O',     /* the transaction came from another origin */
    LM_REC_BEGIN = 'B',
    LM_REC_COMMIT = 'C',
    LM_REC_INSERT = 'I',
    LM_REC_UPDATE = 'U',
    LM_REC_DELETE = 'D',
    LM_REC_TRUNCATE = 'T',
    LM_REC_MESSAGE = 'M',    /* pg_logical_emit_message */
    LM_REC_DDL = 'S',        /* a schema change (DDL) captured on the source */
    LM_REC_POSITION = 'P',   /* keepalive: everything before lsn has been sent */
    LM_REC_ARCHIVE = 'A',    /* a piece of the pg_dump schema archive */
    LM_REC_COPY_BEGIN = 'G', /* bulk table data: one table chunk starts */
    LM_REC_COPY_DATA = 'W',  /* bulk table data: COPY bytes */
    LM_REC_COPY_END = 'J',   /* bulk table data: the chunk is complete */
    LM_REC_TRAILER = 'Z',    /* segment trailer: this file ends, the stream goes on */
    LM_REC_END = 'E'         /* end of stream, with a reason */
};

enum lm_end_reason {
    LM_END_ENDPOS = 1,       /* --endpos reached */
    LM_END_MARKER = 2,       /* cutover marker seen */
    LM_END_SHUTDOWN = 3,     /* producer stopped (signal); more may follow later */
    LM_END_COMPLETE = 4      /* a finite stream is complete (snapshot stream, lm-cat) */
};

/* One column value. kind: 'n' null, 'u' unchanged TOAST (no data),
 * 't' text, 'b' binary (the type's send format). */
typedef struct lm_value {
    char kind;
    uint32_t len;
    const uint8_t *data;
} lm_value;

typedef struct lm_tuple {
    uint32_t ncols;
    lm_value *cols;
} lm_tuple;

#define LM_COL_KEY 1

typedef struct lm_column {
    uint8_t flags;           /* LM_COL_KEY: part of the replica identity */
    const char *name;
    uint32_t typoid;
    int32_t typmod;
} lm_column;

typedef struct lm_relation {
    uint32_t relid;          /* the source's OID: a stream-local id */
    const char *nspname;
    const char *relname;
    char replident;          /* d default, n nothing, f full, i index */
    uint32_t natts;
    lm_column *cols;
    /* Where the names point: a decoded record's into its arena (or at a
     * literal: pgoutput's "pg_catalog"), NULL here; a copy's
     * (lm_relation_dup) into this one block, which it owns. */
    char *names;
} lm_relation;

typedef struct lm_record {
    uint8_t type;
    union {
        struct {
            uint32_t version;        /* format version */
            uint64_t sysid;          /* source system identifier */
            uint32_t timeline;
            uint32_t server_version; /* source server_version_num */
            const char *dbname;
            const char *slot;
            const char *publication;
            const char *encoding;    /* client_encoding of every text value */
            const char *producer;    /* e.g. "lm-decode 0.1" */
            uint64_t start_lsn;
            int64_t created;         /* PostgreSQL timestamp */
        } header;
        lm_relation rel;
        struct { uint32_t oid; const char *nspname; const char *typname; } type;
        struct { uint64_t lsn; const char *name; } origin;
        struct { uint64_t final_lsn; int64_t commit_ts; uint32_t xid; } begin;
        struct { uint8_t flags; uint64_t commit_lsn; uint64_t end_lsn; int64_t commit_ts; } commit;
        struct { uint32_t relid; lm_tuple newtup; } insert;
        struct { uint32_t relid; char oldkind; lm_tuple oldtup; lm_tuple newtup; } update;
        struct { uint32_t relid; char oldkind; lm_tuple oldtup; } del;
        struct { uint8_t flags; uint32_t nrels; uint32_t *relids; } truncate;
        struct {
            uint8_t flags;           /* 1: transactional */
            uint64_t lsn;
            const char *prefix;
            uint32_t len;
            const uint8_t *content;
        } message;
        struct { uint64_t lsn; int64_t time; } position;
        struct {
            uint64_t seq;            /* the capture's sequence number */
            const char *tag;         /* command tag, e.g. "ALTER TABLE" */
            const char *search_path; /* in effect when it ran */
            const char *role;        /* current_user when it ran */
            const char *session_role;/* session_user when it ran */
            const char *command;     /* the query string as executed */
            const char *objects;     /* JSON array of the objects touched */
        } ddl;
        struct { uint32_t seq; uint8_t last; uint32_t len; const uint8_t *data; } archive;
        struct {
            const char *nspname;
            const char *relname;
            uint32_t chunk;          /* 0-based chunk number */
            uint32_t nchunks;
            uint8_t format;          /* 't' text COPY, 'b' binary COPY */
            uint64_t sync_lsn;       /* the copy is consistent with this position */
            const char *columns;     /* quoted column list for COPY, "" for all */
        } copy_begin;
        struct { uint32_t len; const uint8_t *data; } copy_data;
        struct { uint64_t rows; uint64_t bytes; } copy_end;
        struct { uint64_t last_lsn; uint64_t records; } trailer;
        struct { uint8_t reason; uint64_t lsn; const char *detail; } end;
    } u;
} lm_record;

/* Truncate flags, as pgoutput sends them. */
#define LM_TRUNCATE_CASCADE 1
#define LM_TRUNCATE_RESTART_IDENTITY 2

/* Append the body of r (without type and length) to out. */
void lm_record_encode(lm_buf *out, const lm_record *r);

/* Decode a body of the given type. Strings and arrays are allocated from
 * arena (reset by the caller between records); values point into body.
 * Returns false if the body is malformed. Unknown lower-case types decode
 * to a record with nothing filled in. */
bool lm_record_decode(uint8_t type, const uint8_t *body, size_t len, lm_record *r,
                      lm_arena *arena);

/* A deep copy of rel that outlives the record it came from: the names (in
 * one block, names) and the column array are malloc'd. Free it with
 * lm_relation_free. */
lm_relation lm_relation_dup(const lm_relation *rel);
/* Free what lm_relation_dup allocated (not rel itself); only for such a
 * copy, never for a decoded record's relation, whose strings are the
 * arena's. */
void lm_relation_free(lm_relation *rel);

/* Whether a reader must understand this type. */
static inline bool lm_rectype_critical(uint8_t type) { return type >= 'A' && type <= 'Z'; }
/* Whether the type is one this build knows. */
bool lm_rectype_known(uint8_t type);
/* A lower-case name for messages: "insert", "commit", ... */
const char *lm_rectype_name(uint8_t type);
const char *lm_end_reason_name(uint8_t reason);

#endif
