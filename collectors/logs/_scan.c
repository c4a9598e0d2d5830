/* The compiled fast path of the log collector: one pass over a block of lines.
 *
 * scan_template(block, ops, cuts) reads lines written by an nginx log_format template
 * (compiled by formats.compile_nginx_template into a list of ops); scan_json(block,
 * keys, cuts, scale) reads one flat JSON object per line; HAProxy's httplog and Envoy's
 * default format are read by one op each (match_haproxy, match_envoy).  Both return the good lines as
 * columns (numbers as float64, text fields dictionary-encoded: codes and the distinct
 * values) and the positions of the lines they leave to the strict Python parsers.
 *
 * The contract with the strict parsers is one-sided: a line this scanner accepts is
 * read exactly as the strict parser reads it (same fields, same numbers, a time key
 * that names the same minute); any line it is not sure of (bad, unusual, JSON with
 * invalid UTF-8 or a lone surrogate, longer than MAX_LINE, a number it cannot convert
 * exactly) is
 * "deferred" to the strict parser, which reads it or says why it is bad.  So the
 * scanner never decides that a line is bad, and never reads one differently.
 *
 * Paths are interned as a key that maps to the same service, not as they are: cut
 * after the first segment that no path prefix of the plan goes on from (`cuts` lists
 * the keys that some prefix goes on from), without query or fragment, so that paths
 * with ids in them do not make a distinct value each (cuts None: paths as they are).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#include <string.h>

#define MAX_LINE (64 * 1024)
#define MAX_DEPTH 64

/* ---- growable byte buffer ------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *d = PyMem_RawRealloc(b->data, cap);
    if (!d) return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const void *p, Py_ssize_t n) {
    if (n == 0) return 0;
    if (buf_reserve(b, n) < 0) return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

static void buf_free(Buf *b) { PyMem_RawFree(b->data); b->data = NULL; b->len = b->cap = 0; }

/* ---- intern table: byte strings -> dense codes ----------------------------------- */

typedef struct {
    Buf keys;                 /* every key's bytes, back to back */
    Py_ssize_t *start, *size; /* per code */
    uint64_t *hash;
    Py_ssize_t n, cap;
    int32_t *slots;           /* open addressing, -1 empty */
    size_t mask;
    int32_t last;             /* the previous hit: runs of one key are common */
} Intern;

/* memcmp(a, b, n) == 0 for the short keys here, without a call: whole words, the last
 * one overlapping the one before */
static inline int same_bytes(const char *a, const char *b, Py_ssize_t n) {
    uint64_t x, y;
    uint32_t u, v;
    if (n >= 8) {
        for (Py_ssize_t i = 0; i + 8 <= n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y) return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v) return 0;
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return u == v;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

static inline uint64_t hash_bytes(const char *p, Py_ssize_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (uint64_t)n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    for (Py_ssize_t i = 0; i < n; i++) w |= (uint64_t)(unsigned char)p[i] << (8 * i);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    return h;
}

static int intern_init(Intern *t) {
    memset(t, 0, sizeof *t);
    t->mask = 255;
    t->slots = PyMem_RawMalloc((t->mask + 1) * sizeof(int32_t));
    if (!t->slots) return -1;
    memset(t->slots, 0xff, (t->mask + 1) * sizeof(int32_t));
    t->last = -1;
    return 0;
}

static void intern_free(Intern *t) {
    buf_free(&t->keys);
    PyMem_RawFree(t->start);
    PyMem_RawFree(t->size);
    PyMem_RawFree(t->hash);
    PyMem_RawFree(t->slots);
    memset(t, 0, sizeof *t);
}

static int intern_grow(Intern *t) {
    size_t mask = t->mask * 2 + 1;
    int32_t *slots = PyMem_RawMalloc((mask + 1) * sizeof(int32_t));
    if (!slots) return -1;
    memset(slots, 0xff, (mask + 1) * sizeof(int32_t));
    for (Py_ssize_t i = 0; i < t->n; i++) {
        size_t s = t->hash[i] & mask;
        while (slots[s] >= 0) s = (s + 1) & mask;
        slots[s] = (int32_t)i;
    }
    PyMem_RawFree(t->slots);
    t->slots = slots;
    t->mask = mask;
    return 0;
}

/* The code of key p[0:n] (a new one if unseen), or -1 with an exception set. */
static int32_t intern(Intern *t, const char *p, Py_ssize_t n) {
    if (t->last >= 0 && t->size[t->last] == n &&
        same_bytes(t->keys.data + t->start[t->last], p, n))
        return t->last;
    uint64_t h = hash_bytes(p, n);
    size_t s = h & t->mask;
    for (;;) {
        int32_t i = t->slots[s];
        if (i < 0) break;
        if (t->hash[i] == h && t->size[i] == n && same_bytes(t->keys.data + t->start[i], p, n))
            return t->last = i;
        s = (s + 1) & t->mask;
    }
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap ? t->cap * 2 : 64;
        Py_ssize_t *st = PyMem_RawRealloc(t->start, cap * sizeof(Py_ssize_t));
        if (!st) return -1;
        t->start = st;
        Py_ssize_t *sz = PyMem_RawRealloc(t->size, cap * sizeof(Py_ssize_t));
        if (!sz) return -1;
        t->size = sz;
        uint64_t *hs = PyMem_RawRealloc(t->hash, cap * sizeof(uint64_t));
        if (!hs) return -1;
        t->hash = hs;
        t->cap = cap;
    }
    int32_t i = (int32_t)t->n++;
    t->start[i] = t->keys.len;
    t->size[i] = n;
    t->hash[i] = h;
    if (buf_put(&t->keys, p, n) < 0) return -1;
    t->slots[s] = i;
    if ((size_t)t->n * 2 > t->mask && intern_grow(t) < 0) return -1;
    return t->last = i;
}

/* The distinct values, in code order, as bytes (as_text: str, ASCII or UTF-8). */
static PyObject *intern_values(Intern *t, int as_text) {
    PyObject *list = PyList_New(t->n);
    if (!list) return NULL;
    for (Py_ssize_t i = 0; i < t->n; i++) {
        const char *p = t->keys.data ? t->keys.data + t->start[i] : "";
        PyObject *v = as_text ? PyUnicode_DecodeUTF8(p, t->size[i], "replace")
                              : PyBytes_FromStringAndSize(p, t->size[i]);
        if (!v) { Py_DECREF(list); return NULL; }
        PyList_SET_ITEM(list, i, v);
    }
    return list;
}

/* ---- what one block gives -------------------------------------------------------- */

enum { COL_TS, COL_PATH, COL_UP, COL_ROUTE, NCOLS };

typedef struct {
    Buf index, status, size, latency;   /* int64, float64 x 3 */
    Buf codes[NCOLS];                   /* int32 each */
    Intern text[NCOLS];
    Buf deferred;                       /* int64 triples: line, start, end */
    int routes;                         /* a line named a route */
    /* path keys some prefix of the plan goes on from ("/", "/api", ...); -1: none, paths
     * are kept whole */
    Py_ssize_t ncuts;
    const char **cut;
    Py_ssize_t *cut_n;
    char tskey[32];                     /* a time key being built */
    char clf[26];                       /* the last $time_local read, checked */
    int clf_seen;
    char scratch[MAX_LINE + 16];        /* a path key being built */
} Out;

/* one good line, before it is written */
typedef struct {
    const char *ts; Py_ssize_t ts_n;
    const char *path; Py_ssize_t path_n;
    const char *up; Py_ssize_t up_n;
    const char *route; Py_ssize_t route_n;
    double status, size, latency;
    /* JSON times that are numbers: the epoch second that starts their minute */
    int ts_number;
    long long ts_seconds;
} Line;

static int out_init(Out *o, PyObject *cuts, Py_ssize_t block_len) {
    memset(o, 0, offsetof(Out, scratch));
    o->ncuts = -1;
    /* room for a line every 96 bytes (access-log lines are longer): few reallocations */
    Py_ssize_t lines = block_len / 96 + 64;
    if (buf_reserve(&o->index, lines * 8) < 0 || buf_reserve(&o->status, lines * 8) < 0 ||
        buf_reserve(&o->size, lines * 8) < 0 || buf_reserve(&o->latency, lines * 8) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    for (int c = 0; c < NCOLS; c++)
        if (buf_reserve(&o->codes[c], lines * 4) < 0) { PyErr_NoMemory(); return -1; }
    if (cuts != Py_None) {
        PyObject *fast = PySequence_Fast(cuts, "cuts must be a sequence of bytes");
        if (!fast) return -1;
        Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
        o->cut = PyMem_RawCalloc(n + 1, sizeof(char *));
        o->cut_n = PyMem_RawCalloc(n + 1, sizeof(Py_ssize_t));
        if (!o->cut || !o->cut_n) { Py_DECREF(fast); PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < n; i++) {
            char *b;
            /* the bytes live as long as `cuts`, which the caller holds */
            if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(fast, i), &b, &o->cut_n[i]) < 0) {
                Py_DECREF(fast);
                return -1;
            }
            o->cut[i] = b;
        }
        Py_DECREF(fast);
        o->ncuts = n;
    }
    for (int c = 0; c < NCOLS; c++)
        if (intern_init(&o->text[c]) < 0) { PyErr_NoMemory(); return -1; }
    return 0;
}

static void out_free(Out *o) {
    PyMem_RawFree(o->cut);
    PyMem_RawFree(o->cut_n);
    buf_free(&o->index); buf_free(&o->status); buf_free(&o->size); buf_free(&o->latency);
    buf_free(&o->deferred);
    for (int c = 0; c < NCOLS; c++) { buf_free(&o->codes[c]); intern_free(&o->text[c]); }
}

static int defer(Out *o, Py_ssize_t line, Py_ssize_t start, Py_ssize_t end) {
    int64_t v[3] = {line, start, end};
    return buf_put(&o->deferred, v, sizeof v);
}

static int put_code(Out *o, int col, const char *p, Py_ssize_t n) {
    int32_t code = intern(&o->text[col], p, n);
    if (code < 0) return -1;
    return buf_put(&o->codes[col], &code, sizeof code);
}

static inline int goes_on(const Out *o, const char *k, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < o->ncuts; i++)
        if (o->cut_n[i] == n && same_bytes(o->cut[i], k, n)) return 1;
    return 0;
}

/* The key of a path with single slashes ("/a/b?q"): "/" and its segments up to the
 * first key no prefix goes on from.  Returns its length, or 0 when the path has an
 * empty segment ("//", a trailing "/" is fine) and must be normalised first. */
static Py_ssize_t path_key(const Out *o, const char *p, const char *e) {
    const char *k = p + 1;                  /* the key so far: [p, k), "/" at first */
    while (goes_on(o, p, k - p)) {
        const char *s = k == p + 1 ? k : k + 1;     /* the next segment */
        if (k != p + 1 && (k >= e || *k != '/')) break;   /* no more segments */
        if (s >= e || *s == '?' || *s == '#') break;
        if (*s == '/') return 0;
        const char *t = s;
        while (t < e && *t != '/' && *t != '?' && *t != '#') t++;
        k = t;
    }
    return k - p;
}

/* A path as a key that maps to the service the whole path maps to (collectors.logs.
 * mapping: segments compared whole, the longest prefix winning, empty segments,
 * query and fragment ignored).  A path that does not start with "/" is kept whole:
 * the mapper reads it itself. */
static int put_path(Out *o, const char *p, Py_ssize_t n) {
    if (o->ncuts < 0 || n == 0 || p[0] != '/') return put_code(o, COL_PATH, p, n);
    Py_ssize_t kn = path_key(o, p, p + n);
    if (kn) return put_code(o, COL_PATH, p, kn);
    /* empty segments: the path without them (up to its query), then its key */
    char *k = o->scratch;
    const char *e = p + n, *q = p;
    kn = 0;
    while (q < e && *q != '?' && *q != '#') {
        while (q < e && *q == '/') q++;
        const char *s = q;
        while (q < e && *q != '/' && *q != '?' && *q != '#') q++;
        if (q > s) {
            k[kn++] = '/';
            memcpy(k + kn, s, q - s);
            kn += q - s;
        }
    }
    if (kn == 0) k[kn++] = '/';
    return put_code(o, COL_PATH, k, path_key(o, k, k + kn));
}

static int put_line(Out *o, Py_ssize_t index, const Line *l) {
    int64_t ix = index;
    if (buf_put(&o->index, &ix, sizeof ix) < 0 ||
        buf_put(&o->status, &l->status, sizeof(double)) < 0 ||
        buf_put(&o->size, &l->size, sizeof(double)) < 0 ||
        buf_put(&o->latency, &l->latency, sizeof(double)) < 0)
        return -1;
    if (l->ts_number) {
        /* a key of its own kind: "\x01<seconds>" (no JSON text holds a raw \x01) */
        int kn = snprintf(o->scratch, 32, "\x01%lld", l->ts_seconds);
        if (put_code(o, COL_TS, o->scratch, kn) < 0) return -1;
    } else if (put_code(o, COL_TS, l->ts, l->ts_n) < 0) {
        return -1;
    }
    if (put_path(o, l->path, l->path_n) < 0 ||
        put_code(o, COL_UP, l->up, l->up_n) < 0 ||
        put_code(o, COL_ROUTE, l->route, l->route_n) < 0)
        return -1;
    if (l->route_n) o->routes = 1;
    return 0;
}

static PyObject *as_bytes(Buf *b) { return PyBytes_FromStringAndSize(b->data ? b->data : "", b->len); }

/* The results, as named tuples (structseq): Python reads fields by name, not position. */
static PyStructSequence_Field SCAN_FIELDS[] = {
    {"lines", "lines in the block"},
    {"index", "int64 line numbers of the lines read"},
    {"status", "float64 status per line read"},
    {"size", "float64 response bytes"},
    {"latency", "float64 latency, in the format's unit"},
    {"deferred", "int64 (line, start, end) triples left to the strict parser"},
    {"ts_codes", "int32 codes into ts_values"},
    {"ts_values", "distinct minute texts"},
    {"path_codes", "int32 codes into path_values"},
    {"path_values", "distinct paths (cut)"},
    {"up_codes", "int32 codes into up_values"},
    {"up_values", "distinct upstreams"},
    {"route_codes", "int32 codes into route_values"},
    {"route_values", "distinct routes"},
    {"routes", "1 when the format names a route"},
    {NULL, NULL},
};
static PyStructSequence_Desc SCAN_DESC = {
    "collectors.logs._scan.Scanned", "What scan_template and scan_json read of a block.",
    SCAN_FIELDS, 15,
};
static PyTypeObject *ScannedType;

static PyStructSequence_Field ROLLUP_FIELDS[] = {
    {"cells", "(slot, minute) keys, int64 pairs"},
    {"requests", "int64 per cell"},
    {"errors", "int64 per cell"},
    {"sizes", "float64 sum per cell"},
    {"sums", "float64 latency sum per cell"},
    {"pairs", "(cell, bucket) keys, int64 pairs"},
    {"counts", "int64 per pair"},
    {NULL, NULL},
};
static PyStructSequence_Desc ROLLUP_DESC = {
    "collectors.logs._scan.Rolled", "What rollup sums per (slot, minute) and bucket.",
    ROLLUP_FIELDS, 7,
};
static PyTypeObject *RolledType;

static PyObject *struct_of(PyTypeObject *type, PyObject *tuple) {
    /* a new structseq holding the items of ``tuple`` (stolen) */
    if (!tuple) return NULL;
    PyObject *res = PyStructSequence_New(type);
    if (res) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(tuple); i++) {
            PyObject *item = PyTuple_GET_ITEM(tuple, i);
            Py_INCREF(item);
            PyStructSequence_SET_ITEM(res, i, item);
        }
    }
    Py_DECREF(tuple);
    return res;
}

static PyObject *out_result(Out *o, Py_ssize_t lines, int as_text) {
    PyObject *vals[NCOLS] = {NULL}, *codes[NCOLS] = {NULL};
    PyObject *res = NULL;
    for (int c = 0; c < NCOLS; c++) {
        vals[c] = intern_values(&o->text[c], as_text);
        codes[c] = as_bytes(&o->codes[c]);
        if (!vals[c] || !codes[c]) goto done;
    }
    res = struct_of(ScannedType, Py_BuildValue(
        "nNNNNNOOOOOOOOi", lines, as_bytes(&o->index), as_bytes(&o->status),
        as_bytes(&o->size), as_bytes(&o->latency), as_bytes(&o->deferred),
        codes[COL_TS], vals[COL_TS], codes[COL_PATH], vals[COL_PATH],
        codes[COL_UP], vals[COL_UP], codes[COL_ROUTE], vals[COL_ROUTE], o->routes));
done:
    for (int c = 0; c < NCOLS; c++) { Py_XDECREF(vals[c]); Py_XDECREF(codes[c]); }
    return res;
}

/* ---- numbers --------------------------------------------------------------------- */

static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
                               1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
                               1e20, 1e21, 1e22};

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)

static inline int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Whether p[0:n] has the shape: '9' a digit, 'A' a letter, '+' a sign, else itself. */
static inline int fits(const char *p, const char *shape, int n) {
    for (int k = 0; k < n; k++) {
        char c = p[k], want = shape[k];
        if (want == '9') {
            if (!IS_DIGIT(c)) return 0;
        } else if (c != want && !(want == 'A' && is_alpha(c)) && !(want == '+' && c == '-')) {
            return 0;
        }
    }
    return 1;
}

/* The path of a request field [q, fe) as formats._REQUEST reads it: the second word
 * when there is a space, else the whole field. */
static inline void request_path(const char *q, const char *fe, Line *l) {
    const char *s1 = memchr(q, ' ', fe - q);
    if (s1) {
        const char *s2 = memchr(s1 + 1, ' ', fe - s1 - 1);
        l->path = s1 + 1;
        l->path_n = (s2 ? s2 : fe) - (s1 + 1);
    } else {
        l->path = q;
        l->path_n = fe - q;
    }
}

/* digits[.digits] at p (end e) to the double Python's float() gives, exactly: the
 * digits as an integer below 2**53 divided by a power of ten up to 1e22 (both exact,
 * one correctly rounded division).  Returns the end of the number, or NULL when
 * there are no digits or too many of them to be exact this way. */
static const char *decimal(const char *p, const char *e, int fraction, double *out) {
    uint64_t m = 0;
    int digits = 0, frac = 0;
    const char *q = p;
    while (q < e && IS_DIGIT(*q)) {
        if (m || *q != '0') digits++;
        m = m * 10 + (uint64_t)(*q - '0');
        if (digits > 15) return NULL;
        q++;
    }
    if (q == p) return NULL;
    if (fraction && q + 1 < e && *q == '.' && IS_DIGIT(q[1])) {
        q++;
        while (q < e && IS_DIGIT(*q)) {
            if (m || *q != '0') digits++;
            m = m * 10 + (uint64_t)(*q - '0');
            frac++;
            if (digits > 15 || frac > 22) return NULL;
            q++;
        }
    }
    *out = (double)m / POW10[frac];
    return q;
}

/* ---- nginx templates ------------------------------------------------------------- */

enum {
    OP_LIT, OP_SKIP, OP_TS_CLF, OP_TS_ISO, OP_TS_MSEC, OP_REQUEST, OP_URI, OP_STATUS,
    OP_BYTES, OP_NUM, OP_UP_NAME, OP_UP_ADDR, OP_HAPROXY, OP_ENVOY, OP_LAST
};

typedef struct {
    int kind;
    int stop;               /* the first byte after the op in the template, -1: none */
    const char *lit;
    Py_ssize_t lit_n;
} Op;

/* Bytes that end a run: bit 1 a space or a quote, bit 2 also "]". */
static unsigned char RUN_END[256];

static inline const char *run_not(const char *p, const char *e, unsigned char stops) {
    while (p < e && !(RUN_END[(unsigned char)*p] & stops)) p++;
    return p;
}

#define SPACE_QUOTE 1
#define SPACE_QUOTE_BRACKET 2

/* \S in a regex over bytes: anything but space, \t, \n, \v, \f, \r */
static inline int is_space_re(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static inline const char *nonspace(const char *p, const char *e) {
    while (p < e && !is_space_re(*p)) p++;
    return p;
}

/* One whole HAProxy `option httplog` line (formats._HAPROXY), read as that regex reads
 * it by its first choices: the end of the request's closing quote, or NULL. */
static const char *match_haproxy(const char *p, const char *e, Line *l) {
    const char *q = p, *r;
    /* (?:[^\[]*?haproxy\[\d+\]: )? -- "haproxy" can only sit right before the first "[" */
    const char *br = memchr(p, '[', e - p);
    if (br && br - p >= 7 && memcmp(br - 7, "haproxy", 7) == 0) {
        r = br + 1;
        while (r < e && IS_DIGIT(*r)) r++;
        if (r > br + 1 && e - r >= 3 && r[0] == ']' && r[1] == ':' && r[2] == ' ') q = r + 3;
    }
    /* \S+ \[ */
    r = nonspace(q, e);
    if (r == q || e - r < 2 || r[0] != ' ' || r[1] != '[') return NULL;
    q = r + 2;
    /* (?P<ts>\d\d/[A-Za-z]{3}/\d{4}:\d\d:\d\d):\d\d(?:\.\d+)?\]  */
    if (e - q < 21 || !fits(q, "99/AAA/9999:99:99:99", 20)) return NULL;
    l->ts = q;
    l->ts_n = 17;
    q += 20;
    if (e - q >= 2 && q[0] == '.' && IS_DIGIT(q[1])) {
        q++;
        while (q < e && IS_DIGIT(*q)) q++;
    }
    if (e - q < 2 || q[0] != ']' || q[1] != ' ') return NULL;
    q += 2;
    /* \S+ (?P<route>[^/ ]+)/(?P<upstream>\S+)  */
    r = nonspace(q, e);
    if (r == q || r >= e || *r != ' ') return NULL;
    q = r + 1;
    r = q;
    while (r < e && *r != '/' && *r != ' ') r++;
    if (r == q || r >= e || *r != '/') return NULL;
    l->route = q;
    l->route_n = r - q;
    q = r + 1;
    r = nonspace(q, e);
    if (r == q || r >= e || *r != ' ') return NULL;
    l->up = q;
    l->up_n = r - q;
    q = r + 1;
    /* -?\d+/-?\d+/-?\d+/-?\d+/\+?(?P<latency>\d+)  */
    for (int k = 0; k < 4; k++) {
        if (q < e && *q == '-') q++;
        r = q;
        while (r < e && IS_DIGIT(*r)) r++;
        if (r == q || r >= e || *r != '/') return NULL;
        q = r + 1;
    }
    if (q < e && *q == '+') q++;
    r = decimal(q, e, 0, &l->latency);
    if (!r || r >= e || *r != ' ') return NULL;
    q = r + 1;
    /* (?P<status>\d{3}) \+?(?P<bytes>\d+)  */
    if (e - q < 4 || !IS_DIGIT(q[0]) || !IS_DIGIT(q[1]) || !IS_DIGIT(q[2]) || q[3] != ' ')
        return NULL;
    l->status = (q[0] - '0') * 100 + (q[1] - '0') * 10 + (q[2] - '0');
    q += 4;
    if (q < e && *q == '+') q++;
    r = decimal(q, e, 0, &l->size);
    if (!r) return NULL;
    q = r;
    /* ( \S+){5} */
    for (int k = 0; k < 5; k++) {
        if (q >= e || *q != ' ') return NULL;
        r = nonspace(q + 1, e);
        if (r == q + 1) return NULL;
        q = r;
    }
    /* (?: \{[^}]*\})* */
    while (e - q >= 2 && q[0] == ' ' && q[1] == '{') {
        r = memchr(q + 2, '}', e - q - 2);
        if (!r) break;
        q = r + 1;
    }
    /*  "request"  */
    if (e - q < 2 || q[0] != ' ' || q[1] != '"') return NULL;
    q += 2;
    const char *fe = memchr(q, '"', e - q);
    if (!fe) return NULL;
    request_path(q, fe, l);
    return fe + 1;
}

/* A quoted field ("[^"]*") at q: the end of its closing quote, or NULL. */
static inline const char *quoted(const char *q, const char *e) {
    if (q >= e || *q != '"') return NULL;
    const char *r = memchr(q + 1, '"', e - q - 1);
    return r ? r + 1 : NULL;
}

/* One whole line of Envoy's default access-log format (formats._ENVOY), read as that
 * regex reads it by its first choices: the end of the line, or NULL. */
static const char *match_envoy(const char *p, const char *e, Line *l) {
    const char *q = p, *r;
    /* \[(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d):\d\d(?:\.\d+)?Z?\] " */
    if (e - q < 20 || !fits(q, "[9999-99-99T99:99:99", 20)) return NULL;
    l->ts = q + 1;
    l->ts_n = 16;
    q += 20;
    if (e - q >= 2 && q[0] == '.' && IS_DIGIT(q[1])) {
        q++;
        while (q < e && IS_DIGIT(*q)) q++;
    }
    if (q < e && *q == 'Z') q++;
    if (e - q < 3 || q[0] != ']' || q[1] != ' ' || q[2] != '"') return NULL;
    q += 3;
    /* the request, up to its closing quote */
    const char *fe = memchr(q, '"', e - q);
    if (!fe) return NULL;
    request_path(q, fe, l);
    q = fe + 1;
    /* " (?P<status>\d{3}) \S+ \d+ (?P<bytes>\d+) (?P<latency>\d+) \S+ " */
    if (e - q < 5 || q[0] != ' ' || !IS_DIGIT(q[1]) || !IS_DIGIT(q[2]) || !IS_DIGIT(q[3]) ||
        q[4] != ' ')
        return NULL;
    l->status = (q[1] - '0') * 100 + (q[2] - '0') * 10 + (q[3] - '0');
    q += 5;
    r = nonspace(q, e);
    if (r == q || r >= e || *r != ' ') return NULL;
    q = r + 1;
    r = q;
    while (r < e && IS_DIGIT(*r)) r++;
    if (r == q || r >= e || *r != ' ') return NULL;
    q = r + 1;
    r = decimal(q, e, 0, &l->size);
    if (!r || r >= e || *r != ' ') return NULL;
    q = r + 1;
    r = decimal(q, e, 0, &l->latency);
    if (!r || r >= e || *r != ' ') return NULL;
    q = r + 1;
    r = nonspace(q, e);
    if (r == q || r >= e || *r != ' ') return NULL;
    q = r + 1;
    /* "[^"]*" x4, each and a space, then "(?P<upstream>[^"]*)" and anything */
    for (int k = 0; k < 4; k++) {
        r = quoted(q, e);
        if (!r || r >= e || *r != ' ') return NULL;
        q = r + 1;
    }
    r = quoted(q, e);
    if (!r) return NULL;
    l->up = q + 1;
    l->up_n = r - 1 - (q + 1);
    return e;
}

/* Reads one line with the template's ops, the way the template's regex reads it:
 * every op takes what the regex's first choice takes.  0: not sure (defer). */
static int match_template(Out *o, const Op *ops, Py_ssize_t nops, const char *p,
                          const char *e, Line *l) {
    for (Py_ssize_t i = 0; i < nops; i++) {
        const Op *op = &ops[i];
        const char *q;
        switch (op->kind) {
        case OP_LIT:
            if (e - p < op->lit_n || !same_bytes(p, op->lit, op->lit_n)) return 0;
            p += op->lit_n;
            break;
        case OP_SKIP:
            if (op->stop < 0) {
                p = e;
            } else {
                q = memchr(p, op->stop, e - p);
                p = q ? q : e;
            }
            break;
        case OP_TS_CLF: {
            /* dd/Mon/yyyy:hh:mm:ss +zzzz; the key drops the seconds */
            if (e - p < 26) return 0;
            if (!(o->clf_seen && same_bytes(p, o->clf, 26))) {  /* a second seen before */
                if (!fits(p, "99/AAA/9999:99:99:99 +9999", 26)) return 0;
                memcpy(o->clf, p, 26);
                o->clf_seen = 1;
            }
            memcpy(o->tskey, p, 17);
            memcpy(o->tskey + 17, p + 20, 6);
            l->ts = o->tskey;
            l->ts_n = 23;
            p += 26;
            break;
        }
        case OP_TS_ISO: {
            if (e - p < 19 || !fits(p, "9999-99-99T99:99:99", 19)) return 0;
            q = p + 19;
            if (q < e && *q == 'Z') {
                q++;
            } else if (e - q >= 3 && (*q == '+' || *q == '-') && IS_DIGIT(q[1]) &&
                       IS_DIGIT(q[2])) {
                if (e - q >= 6 && q[3] == ':' && IS_DIGIT(q[4]) && IS_DIGIT(q[5]))
                    q += 6;
                else if (e - q >= 5 && IS_DIGIT(q[3]) && IS_DIGIT(q[4]))
                    q += 5;
            }
            l->ts = p;
            l->ts_n = q - p;
            p = q;
            break;
        }
        case OP_TS_MSEC:
            q = p;
            while (q < e && IS_DIGIT(*q)) q++;
            if (q == p || q + 1 >= e || *q != '.' || !IS_DIGIT(q[1])) return 0;
            l->ts = p;
            l->ts_n = q - p;
            q++;
            while (q < e && IS_DIGIT(*q)) q++;
            p = q;
            break;
        case OP_REQUEST: {
            const char *fe = memchr(p, '"', e - p);
            if (!fe) fe = e;
            request_path(p, fe, l);
            p = fe;
            break;
        }
        case OP_URI:
            q = run_not(p, e, SPACE_QUOTE);
            l->path = p;
            l->path_n = q - p;
            p = q;
            break;
        case OP_STATUS:
            if (e - p < 3 || !IS_DIGIT(p[0]) || !IS_DIGIT(p[1]) || !IS_DIGIT(p[2])) return 0;
            l->status = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
            p += 3;
            break;
        case OP_BYTES:
            q = decimal(p, e, 0, &l->size);
            if (!q) return 0;
            p = q;
            break;
        case OP_NUM:
            q = decimal(p, e, 1, &l->latency);
            if (!q) return 0;
            p = q;
            break;
        case OP_UP_NAME:
            q = run_not(p, e, SPACE_QUOTE_BRACKET);
            l->up = p;
            l->up_n = q - p;
            p = q;
            break;
        case OP_HAPROXY:
            q = match_haproxy(p, e, l);
            if (!q) return 0;
            p = q;
            break;
        case OP_ENVOY:
            q = match_envoy(p, e, l);
            if (!q) return 0;
            p = q;
            break;
        case OP_UP_ADDR:
            /* [^ "]*(?:, [^ "]*)* -- the regex's first choice is the first run alone
             * (the run takes the comma the group needs).  Before a quote or at the end
             * of the template, though, the only reading that can go on is the whole
             * field up to that quote or the end of the line, with each of its spaces
             * after a comma ("a:80, b:80"): taken when it is so. */
            q = run_not(p, e, SPACE_QUOTE);
            if ((op->stop == '"' || (op->stop < 0 && i == nops - 1)) && q < e && *q == ' ') {
                while (q < e && *q == ' ' && q > p && q[-1] == ',') q = run_not(q + 1, e, SPACE_QUOTE);
            }
            l->up = p;
            l->up_n = q - p;
            p = q;
            break;
        default:
            return 0;
        }
    }
    return p == e || (p + 1 == e && *p == '\r');
}

static int parse_ops(PyObject *seq, Op **ops_out, Py_ssize_t *n_out) {
    PyObject *fast = PySequence_Fast(seq, "ops must be a sequence");
    if (!fast) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    Op *ops = PyMem_RawCalloc(n ? n : 1, sizeof(Op));
    if (!ops) { Py_DECREF(fast); PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PySequence_Fast_GET_ITEM(fast, i);
        int kind, stop;
        const char *lit;
        Py_ssize_t lit_n;
        if (!PyArg_ParseTuple(item, "iiy#", &kind, &stop, &lit, &lit_n)) goto fail;
        if (kind < 0 || kind >= OP_LAST) {
            PyErr_Format(PyExc_ValueError, "unknown op %d", kind);
            goto fail;
        }
        ops[i].kind = kind;
        ops[i].stop = stop;
        ops[i].lit = lit;       /* kept alive by `seq`, held by the caller */
        ops[i].lit_n = lit_n;
    }
    Py_DECREF(fast);
    *ops_out = ops;
    *n_out = n;
    return 0;
fail:
    Py_DECREF(fast);
    PyMem_RawFree(ops);
    return -1;
}

/* ---- the block: one driver for every format ------------------------------------- */

/* Reads one line into l; 0: not sure (the line is deferred). */
typedef int (*Matcher)(Out *o, void *ctx, const char *p, const char *e, Line *l);

/* Every line of a block through match; 0, or -1 when out of memory.  Touches no Python
 * object: it runs without the GIL. */
static inline int scan_lines(Out *o, Matcher match, void *ctx, const char *base, Py_ssize_t len,
                      Py_ssize_t *lines) {
    const char *p = base, *end = base + len;
    Py_ssize_t index = 0;
    static const char empty[] = "";
    for (;;) {
        const char *nl = memchr(p, '\n', end - p);
        const char *le = nl ? nl : end;
        Line l = {0};
        l.up = l.route = l.path = l.ts = empty;
        int ok = le - p <= MAX_LINE && match(o, ctx, p, le, &l);
        if (ok ? put_line(o, index, &l) < 0 : defer(o, index, p - base, le - base) < 0)
            return -1;
        index++;
        if (!nl) break;
        p = nl + 1;
    }
    *lines = index;
    return 0;
}

/* The columns of a block read by match, other threads running meanwhile; NULL with an
 * exception set on failure.  as_text: distinct values as str (else bytes). */
static inline PyObject *scan_block(Py_buffer *block, PyObject *cuts, Matcher match, void *ctx,
                            int as_text) {
    Out *o = PyMem_RawMalloc(sizeof(Out));
    PyObject *res = NULL;
    if (!o) return PyErr_NoMemory();
    if (out_init(o, cuts, block->len) == 0) {
        Py_ssize_t lines = 0;
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = scan_lines(o, match, ctx, block->buf, block->len, &lines);
        Py_END_ALLOW_THREADS
        if (rc == 0) res = out_result(o, lines, as_text);
    }
    if (!res && !PyErr_Occurred()) PyErr_NoMemory();
    out_free(o);
    PyMem_RawFree(o);
    return res;
}

typedef struct {
    const Op *ops;
    Py_ssize_t nops;
} Template;

static int template_line(Out *o, void *ctx, const char *p, const char *e, Line *l) {
    const Template *t = ctx;
    return match_template(o, t->ops, t->nops, p, e, l);
}

static PyObject *scan_template(PyObject *self, PyObject *args) {
    Py_buffer block;
    PyObject *ops_seq, *cuts, *res = NULL;
    if (!PyArg_ParseTuple(args, "y*OO", &block, &ops_seq, &cuts)) return NULL;
    Op *ops = NULL;
    Py_ssize_t nops = 0;
    if (parse_ops(ops_seq, &ops, &nops) == 0) {
        Template t = {ops, nops};
        res = scan_block(&block, cuts, template_line, &t, 0);
    }
    PyMem_RawFree(ops);
    PyBuffer_Release(&block);
    return res;
}

/* ---- JSON lines ------------------------------------------------------------------ */

enum { F_TIME, F_PATH, F_STATUS, F_BYTES, F_LATENCY, F_UP, F_ROUTE, NFIELDS };

typedef struct {
    const char *name[NFIELDS];
    Py_ssize_t size[NFIELDS];
} Fields;

static inline const char *ws(const char *p, const char *e) {
    if (p >= e || (unsigned char)*p > ' ') return p;    /* the usual case: none */
    while (p < e && (*p == ' ' || *p == '\t' || *p == '\r')) p++;
    return p;
}

/* What a byte is inside a JSON string: 0 plain, 1 the closing quote, 2 an escape,
 * 3 not for this scanner (a control character, which JSON refuses: the strict
 * parser's to say so), 4 the first byte of a sequence beyond ASCII (checked as UTF-8
 * as orjson checks it). */
static unsigned char STRING_BYTE[256];

static void init_tables(void) {
    for (int c = 0; c < 256; c++)
        STRING_BYTE[c] = c == '"' ? 1 : c == '\\' ? 2 : c < 0x20 ? 3 : c >= 0x80 ? 4 : 0;
    RUN_END[' '] = RUN_END['"'] = SPACE_QUOTE | SPACE_QUOTE_BRACKET;
    RUN_END[']'] = SPACE_QUOTE_BRACKET;
}

/* The first byte at or after p that is not plain inside a string (or e). */
static inline const char *plain_run(const char *p, const char *e) {
#if defined(__SSE2__)
    /* 16 bytes at a time: a quote, a backslash, or below 0x20 compared as signed bytes
     * (which takes in every byte from 0x80 on as well) */
    const __m128i quote = _mm_set1_epi8('"'), slash = _mm_set1_epi8('\\'),
                  space = _mm_set1_epi8(0x20);
    while (e - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, slash)),
                                 _mm_cmplt_epi8(v, space));
        int mask = _mm_movemask_epi8(m);
        if (mask) return p + __builtin_ctz((unsigned)mask);
        p += 16;
    }
#endif
    while (p < e && !STRING_BYTE[(unsigned char)*p]) p++;
    return p;
}

static inline unsigned hex4(const char *p) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v = v * 16 + (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

/* The end of one well-formed UTF-8 sequence beyond ASCII at p (RFC 3629 4: no
 * overlong form, no surrogate, nothing past U+10FFFF, as orjson requires), or NULL. */
static inline const char *utf8_end(const char *p, const char *e) {
    const unsigned char *u = (const unsigned char *)p;
    Py_ssize_t left = e - p;
    unsigned char c = u[0], lo = 0x80, hi = 0xBF;
    int n;
    if (c >= 0xC2 && c <= 0xDF) n = 1;
    else if (c >= 0xE0 && c <= 0xEF) { n = 2; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { n = 3; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return NULL;
    if (left <= n || u[1] < lo || u[1] > hi) return NULL;
    for (int k = 2; k <= n; k++)
        if (u[k] < 0x80 || u[k] > 0xBF) return NULL;
    return p + n + 1;
}

/* A string at p (after its opening quote): its end (the closing quote), whether it
 * holds an escape, or NULL when it is not one this scanner reads. */
static inline const char *string_end(const char *p, const char *e, int *escaped) {
    *escaped = 0;
    for (;;) {
        p = plain_run(p, e);
        if (p >= e) return NULL;
        unsigned char kind = STRING_BYTE[(unsigned char)*p];
        if (kind == 1) return p;
        if (kind == 3) return NULL;
        if (kind == 4) {
            p = utf8_end(p, e);
            if (!p) return NULL;
            continue;
        }
        *escaped = 1;                       /* kind 2: an escape */
        if (p + 1 >= e) return NULL;
        char x = p[1];
        if (x == 'u') {
            if (e - p < 6) return NULL;
            for (int k = 2; k < 6; k++)
                if (!strchr("0123456789abcdefABCDEF", p[k]) || !p[k]) return NULL;
            unsigned cp = hex4(p + 2);
            p += 6;
            /* a surrogate only as the first of a pair, as orjson reads them anywhere */
            if (cp >= 0xDC00 && cp <= 0xDFFF) return NULL;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (e - p < 6 || p[0] != '\\' || p[1] != 'u') return NULL;
                for (int k = 2; k < 6; k++)
                    if (!strchr("0123456789abcdefABCDEF", p[k]) || !p[k]) return NULL;
                unsigned low = hex4(p + 2);
                if (low < 0xDC00 || low > 0xDFFF) return NULL;
                p += 6;
            }
            continue;
        }
        if (!strchr("\"\\/bfnrt", x) || !x) return NULL;
        p += 2;
    }
}

/* A JSON number at p: its end, or NULL.  *exact: a plain decimal converted exactly. */
static inline const char *number(const char *p, const char *e, double *out, int *exact) {
    /* one pass: the grammar checked and, for a plain non-negative decimal of at most
     * 15 significant digits, the value as decimal() makes it */
    const char *q = p;
    int neg = 0, sig = 0, frac = 0, expo = 0;
    uint64_t m = 0;
    *exact = 0;
    if (q < e && *q == '-') { neg = 1; q++; }   /* valid, but never exact here */
    if (q >= e || !IS_DIGIT(*q)) return NULL;
    if (*q == '0') {
        q++;
    } else {
        while (q < e && IS_DIGIT(*q)) {
            m = m * 10 + (uint64_t)(*q - '0');
            sig++;
            q++;
        }
    }
    if (q < e && *q == '.') {
        q++;
        if (q >= e || !IS_DIGIT(*q)) return NULL;
        while (q < e && IS_DIGIT(*q)) {
            m = m * 10 + (uint64_t)(*q - '0');
            if (m) sig++;
            frac++;
            q++;
        }
    }
    if (q < e && (*q == 'e' || *q == 'E')) {
        q++;
        if (q < e && (*q == '+' || *q == '-')) q++;
        if (q >= e || !IS_DIGIT(*q)) return NULL;
        while (q < e && IS_DIGIT(*q)) q++;
        expo = 1;
    }
    if (!expo && !neg && sig <= 15 && frac <= 22) {
        *out = (double)m / POW10[frac];
        *exact = 1;
    }
    return q;
}

static const char *value_end(const char *p, const char *e, int depth);

static const char *container_end(const char *p, const char *e, int depth) {
    char close = *p == '{' ? '}' : ']';
    int object = *p == '{';
    if (depth > MAX_DEPTH) return NULL;
    p = ws(p + 1, e);
    if (p < e && *p == close) return p + 1;
    for (;;) {
        if (object) {
            int esc;
            if (p >= e || *p != '"') return NULL;
            p = string_end(p + 1, e, &esc);
            if (!p) return NULL;
            p = ws(p + 1, e);
            if (p >= e || *p != ':') return NULL;
            p = ws(p + 1, e);
        }
        p = value_end(p, e, depth + 1);
        if (!p) return NULL;
        p = ws(p, e);
        if (p < e && *p == ',') { p = ws(p + 1, e); continue; }
        if (p < e && *p == close) return p + 1;
        return NULL;
    }
}

static const char *value_end(const char *p, const char *e, int depth) {
    if (p >= e) return NULL;
    int esc, exact;
    double v;
    switch (*p) {
    case '"': p = string_end(p + 1, e, &esc); return p ? p + 1 : NULL;
    case '{': case '[': return container_end(p, e, depth);
    case 't': return e - p >= 4 && !memcmp(p, "true", 4) ? p + 4 : NULL;
    case 'f': return e - p >= 5 && !memcmp(p, "false", 5) ? p + 5 : NULL;
    case 'n': return e - p >= 4 && !memcmp(p, "null", 4) ? p + 4 : NULL;
    default: return number(p, e, &v, &exact);
    }
}

/* The cache key of a time string (formats.json_time_key): for the usual shape
 * (formats._ISO_SHAPE: yyyy-mm-ddThh:mm, then :ss with ss below 60 and a fraction of 1
 * to 6 digits, then Z or z or +hh:mm) the text up to the minute plus its zone, written
 * to key; -1 for any other text, which is then its own key. */
static Py_ssize_t json_time_key(const char *t, Py_ssize_t n, char *key, int *held) {
    /* key[0:16] still holds the last minute checked (*held): most lines share it */
    if (n < 16 || !((*held && same_bytes(t, key, 16)) || fits(t, "9999-99-99T99:99", 16)))
        return -1;
    const char *p = t + 16, *e = t + n;
    if (e - p >= 3 && p[0] == ':' && p[1] >= '0' && p[1] <= '5' && IS_DIGIT(p[2])) {
        p += 3;
        if (e - p >= 2 && p[0] == '.' && IS_DIGIT(p[1])) {
            const char *f = ++p;
            while (p < e && IS_DIGIT(*p)) p++;
            if (p - f > 6) return -1;
        }
    }
    memcpy(key, t, 16);
    *held = 1;
    if (p == e) return 16;
    if (e - p == 1 && (*p == 'Z' || *p == 'z')) { key[16] = 'Z'; return 17; }
    if (e - p == 6 && (p[0] == '+' || p[0] == '-') && IS_DIGIT(p[1]) && IS_DIGIT(p[2]) &&
        p[3] == ':' && IS_DIGIT(p[4]) && IS_DIGIT(p[5])) {
        memcpy(key + 16, p, 6);
        return 22;
    }
    return -1;
}

/* The text of a JSON string body [s, se) whose escapes string_end checked, written to
 * out as UTF-8 (never longer than the body); its length, or -1 for a surrogate that
 * is not one of a pair (orjson refuses it: the strict parser's to say so). */
static Py_ssize_t unescape(const char *s, const char *se, char *out) {
    char *o = out;
    while (s < se) {
        const char *b = memchr(s, '\\', se - s);
        const char *run_end = b ? b : se;
        memcpy(o, s, run_end - s);
        o += run_end - s;
        s = run_end;
        if (!b) break;
        char x = s[1];
        s += 2;
        switch (x) {
        case 'b': *o++ = '\b'; continue;
        case 'f': *o++ = '\f'; continue;
        case 'n': *o++ = '\n'; continue;
        case 'r': *o++ = '\r'; continue;
        case 't': *o++ = '\t'; continue;
        case 'u': break;
        default: *o++ = x; continue;        /* " \ / */
        }
        unsigned cp = hex4(s);
        s += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (se - s < 6 || s[0] != '\\' || s[1] != 'u') return -1;
            unsigned low = hex4(s + 2);
            if (low < 0xDC00 || low > 0xDFFF) return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            s += 6;
        }
        if (cp < 0x80) {
            *o++ = (char)cp;
        } else if (cp < 0x800) {
            *o++ = (char)(0xC0 | (cp >> 6));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            *o++ = (char)(0xE0 | (cp >> 12));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        } else {
            *o++ = (char)(0xF0 | (cp >> 18));
            *o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
            *o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
            *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    return o - out;
}

/* The keys of the line before, by position: most logs write the same keys in the same
 * order, so a key is first compared with the one at its place in the line before. */
#define KNOWN_KEYS 32
typedef struct {
    const char *key[KNOWN_KEYS];
    Py_ssize_t size[KNOWN_KEYS];
    int which[KNOWN_KEYS];
} KeyOrder;

/* Room for the unescaped text of the path, the upstream and the route of one line. */
enum { TEXT_PATH, TEXT_UP, TEXT_ROUTE, NTEXT };

/* One flat JSON object with the fields in their plain types (text with escapes and
 * UTF-8, null for the upstream, the route and the bytes); 0: not sure (defer). */
static int match_json(const Fields *f, KeyOrder *order, const char *p, const char *e, Line *l,
                      char *key, int *key_held, char *text) {
    int seen[NFIELDS] = {0};
    double time_value = 0;
    p = ws(p, e);
    if (p >= e || *p != '{') return 0;
    p = ws(p + 1, e);
    if (p < e && *p == '}') return 0;
    for (int pos = 0;; pos++) {
        int esc, exact, which = -1;
        if (p >= e || *p != '"') return 0;
        const char *k = p + 1, *ke;
        Py_ssize_t n = pos < KNOWN_KEYS ? order->size[pos] : -1;
        if (n >= 0 && e - k > n && k[n] == '"' && same_bytes(k, order->key[pos], n)) {
            ke = k + n;         /* the same key (no quote nor escape in it) */
            which = order->which[pos];
        } else {
            ke = string_end(k, e, &esc);
            if (!ke || esc) return 0;
            for (int i = 0; i < NFIELDS; i++)
                if (f->size[i] == ke - k && same_bytes(f->name[i], k, ke - k)) {
                    which = i;
                    break;
                }
            if (pos < KNOWN_KEYS) {
                order->key[pos] = k;
                order->size[pos] = ke - k;
                order->which[pos] = which;
            }
        }
        p = ws(ke + 1, e);
        if (p >= e || *p != ':') return 0;
        p = ws(p + 1, e);
        if (which >= 0) {
            if (seen[which]) return 0;
            seen[which] = 1;
        }
        if (which < 0) {
            p = value_end(p, e, 0);
            if (!p) return 0;
        } else if (*p == '"') {
            const char *s = p + 1, *se = string_end(s, e, &esc);
            if (!se) return 0;
            Py_ssize_t n = se - s;
            if (esc) {
                /* the text the escapes stand for, kept until the line is written */
                int slot = which == F_PATH ? TEXT_PATH : which == F_UP ? TEXT_UP
                         : which == F_ROUTE ? TEXT_ROUTE : -1;
                if (slot < 0) return 0;     /* an escaped time, or text in a number */
                char *t = text + (Py_ssize_t)slot * (MAX_LINE + 16);
                n = unescape(s, se, t);
                if (n < 0) return 0;
                s = t;
            }
            switch (which) {
            case F_TIME: l->ts = s; l->ts_n = n; break;
            case F_PATH: l->path = s; l->path_n = n; break;
            case F_UP: l->up = s; l->up_n = n; break;
            case F_ROUTE: l->route = s; l->route_n = n; break;
            default: return 0;      /* a number field holding text */
            }
            p = se + 1;
        } else if (*p == '-' || IS_DIGIT(*p)) {
            double v;
            const char *ne = number(p, e, &v, &exact);
            if (!ne || !exact) return 0;
            switch (which) {
            case F_TIME: l->ts_number = 1; time_value = v; break;
            case F_STATUS:
                /* an integer only (limits.py): 200.0 is the strict parser's to refuse */
                if (memchr(p, '.', ne - p)) return 0;
                l->status = v;
                break;
            case F_BYTES: l->size = v; break;
            case F_LATENCY: l->latency = v; break;
            default: return 0;      /* a text field holding a number */
            }
            p = ne;
        } else if (e - p >= 4 && !memcmp(p, "null", 4) &&
                   (which == F_UP || which == F_ROUTE || which == F_BYTES)) {
            /* formats._texts and JsonFormat._columns: a null text is "", null bytes 0 */
            p += 4;
        } else {
            return 0;       /* other nulls, true, false, objects: the strict parser's */
        }
        p = ws(p, e);
        if (p < e && *p == ',') { p = ws(p + 1, e); continue; }
        if (p < e && *p == '}') { p = ws(p + 1, e); break; }
        return 0;
    }
    if (p != e) return 0;
    if (!seen[F_TIME] || !seen[F_PATH] || !seen[F_STATUS] || !seen[F_LATENCY]) return 0;
    if (l->ts_number) {
        /* formats.minute_of: milliseconds past 1e11, whole seconds, floor to a minute */
        double seconds = time_value > 1e11 ? time_value / 1000 : time_value;
        if (!(seconds >= 0 && seconds < 1e11)) return 0;
        long long s = (long long)seconds;
        l->ts_seconds = s - s % 60;
    } else {
        Py_ssize_t kn = json_time_key(l->ts, l->ts_n, key, key_held);
        if (kn >= 0) {
            l->ts_n = kn;
            l->ts = key;
        }
    }
    return 1;
}

static int parse_fields(PyObject *seq, Fields *f) {
    PyObject *fast = PySequence_Fast(seq, "fields must be a sequence");
    if (!fast) return -1;
    if (PySequence_Fast_GET_SIZE(fast) != NFIELDS) {
        Py_DECREF(fast);
        PyErr_Format(PyExc_ValueError, "expected %d field names", NFIELDS);
        return -1;
    }
    for (int i = 0; i < NFIELDS; i++) {
        char *s;
        if (PyBytes_AsStringAndSize(PySequence_Fast_GET_ITEM(fast, i), &s, &f->size[i]) < 0) {
            Py_DECREF(fast);
            return -1;
        }
        f->name[i] = s;     /* kept alive by `seq`, held by the caller */
    }
    Py_DECREF(fast);
    return 0;
}

typedef struct {
    Fields fields;
    KeyOrder order;
    double scale;
    char key[32];       /* a time key being built */
    int key_held;       /* key[0:16] is a minute checked before */
    char *text;         /* NTEXT buffers of MAX_LINE + 16 bytes: unescaped text */
} Json;

static int json_line(Out *o, void *ctx, const char *p, const char *e, Line *l) {
    Json *j = ctx;
    if (!match_json(&j->fields, &j->order, p, e, l, j->key, &j->key_held, j->text)) return 0;
    l->latency *= j->scale;
    return 1;
}

static PyObject *scan_json(PyObject *self, PyObject *args) {
    Py_buffer block;
    PyObject *fields_seq, *cuts, *res = NULL;
    Json j;
    if (!PyArg_ParseTuple(args, "y*OOd", &block, &fields_seq, &cuts, &j.scale)) return NULL;
    j.text = NULL;
    if (parse_fields(fields_seq, &j.fields) == 0) {
        for (int k = 0; k < KNOWN_KEYS; k++) j.order.size[k] = -1;
        j.key_held = 0;
        j.text = PyMem_RawMalloc((size_t)NTEXT * (MAX_LINE + 16));
        if (!j.text)
            PyErr_NoMemory();
        else
            res = scan_block(&block, cuts, json_line, &j, 1);
    }
    PyMem_RawFree(j.text);
    PyBuffer_Release(&block);
    return res;
}

/* ---- rollups ---------------------------------------------------------------------- */

/* The latency bucket of ms (slo.sketch.bucket_index: the C library's log, as math.log). */
static inline int64_t bucket_of(double ms, double log_gamma, double min_value, int64_t zero) {
    if (!(ms > min_value)) return zero;
    return (int64_t)ceil(log(ms) / log_gamma);
}

typedef struct { int64_t a, b; } Key2;

/* open addressing over (a, b) -> dense index */
typedef struct {
    Key2 *keys;
    int32_t *slots;
    size_t mask;
    Py_ssize_t n, cap;
} Table2;

static int table2_init(Table2 *t) {
    memset(t, 0, sizeof *t);
    t->mask = 1023;
    t->slots = PyMem_RawMalloc((t->mask + 1) * sizeof(int32_t));
    if (!t->slots) return -1;
    memset(t->slots, 0xff, (t->mask + 1) * sizeof(int32_t));
    return 0;
}

static void table2_free(Table2 *t) { PyMem_RawFree(t->keys); PyMem_RawFree(t->slots); }

static inline size_t hash2(int64_t a, int64_t b) {
    uint64_t h = ((uint64_t)a * 0x9E3779B97F4A7C15ull) ^ ((uint64_t)b * 0xC2B2AE3D27D4EB4Full);
    return (size_t)(h ^ (h >> 29));
}

/* index of (a, b), a new one if unseen; *fresh says which; -1 on error */
static Py_ssize_t table2_get(Table2 *t, int64_t a, int64_t b, int *fresh) {
    size_t s = hash2(a, b) & t->mask;
    for (;;) {
        int32_t i = t->slots[s];
        if (i < 0) break;
        if (t->keys[i].a == a && t->keys[i].b == b) { *fresh = 0; return i; }
        s = (s + 1) & t->mask;
    }
    if (t->n == t->cap) {
        Py_ssize_t cap = t->cap ? t->cap * 2 : 256;
        Key2 *k = PyMem_RawRealloc(t->keys, cap * sizeof(Key2));
        if (!k) return -1;
        t->keys = k;
        t->cap = cap;
    }
    Py_ssize_t i = t->n++;
    t->keys[i].a = a;
    t->keys[i].b = b;
    t->slots[s] = (int32_t)i;
    *fresh = 1;
    if ((size_t)t->n * 2 > t->mask) {
        size_t mask = t->mask * 2 + 1;
        int32_t *slots = PyMem_RawMalloc((mask + 1) * sizeof(int32_t));
        if (!slots) return -1;
        memset(slots, 0xff, (mask + 1) * sizeof(int32_t));
        for (Py_ssize_t j = 0; j < t->n; j++) {
            size_t h = hash2(t->keys[j].a, t->keys[j].b) & mask;
            while (slots[h] >= 0) h = (h + 1) & mask;
            slots[h] = (int32_t)j;
        }
        PyMem_RawFree(t->slots);
        t->slots = slots;
        t->mask = mask;
    }
    return i;
}

static int get_column(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, Py_ssize_t n,
                      const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view->len != itemsize * n) {
        PyErr_Format(PyExc_ValueError, "%s: expected %zd bytes, got %zd", what,
                     itemsize * n, view->len);
        PyBuffer_Release(view);
        return -1;
    }
    return 0;
}

/* rollup(slot int64[], minute int64[], status f64[], size f64[], latency f64[],
 *        log_gamma, min_value, zero) -> per (slot, minute) cell in order of first
 * appearance: keys (int64 pairs), requests, 5xx (int64), bytes, latency sum (f64);
 * per (cell, bucket): cell, bucket, count (int64 triples).  Sums run in line order,
 * as numpy's bincount runs them. */
static PyObject *rollup(PyObject *self, PyObject *args) {
    PyObject *o_slot, *o_minute, *o_status, *o_size, *o_lat;
    double log_gamma, min_value;
    long long zero;
    if (!PyArg_ParseTuple(args, "OOOOOddL", &o_slot, &o_minute, &o_status, &o_size, &o_lat,
                          &log_gamma, &min_value, &zero))
        return NULL;
    Py_ssize_t n = PyObject_Length(o_slot);
    if (n < 0) return NULL;
    Py_buffer v[5];
    PyObject *cols[5] = {o_slot, o_minute, o_status, o_size, o_lat};
    static const char *names[5] = {"slot", "minute", "status", "size", "latency"};
    int got = 0;
    PyObject *res = NULL;
    Table2 cells, pairs;
    Buf requests = {0}, errors = {0}, sizes = {0}, sums = {0}, counts = {0};
    int tables = 0;
    for (; got < 5; got++)
        if (get_column(cols[got], &v[got], 8, n, names[got]) < 0) goto end;
    if (table2_init(&cells) < 0) goto end;
    if (table2_init(&pairs) < 0) { table2_free(&cells); goto end; }
    tables = 1;
    const int64_t *slot = v[0].buf, *minute = v[1].buf;
    const double *status = v[2].buf, *size = v[3].buf, *lat = v[4].buf;
    Py_ssize_t last = -1;
    int64_t last_slot = 0, last_minute = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int fresh;
        Py_ssize_t c;
        if (last >= 0 && slot[i] == last_slot && minute[i] == last_minute) {
            c = last;
        } else {
            c = table2_get(&cells, slot[i], minute[i], &fresh);
            if (c < 0) goto end;
            if (fresh) {
                int64_t zi = 0;
                double zd = 0;
                if (buf_put(&requests, &zi, 8) < 0 || buf_put(&errors, &zi, 8) < 0 ||
                    buf_put(&sizes, &zd, 8) < 0 || buf_put(&sums, &zd, 8) < 0)
                    goto end;
            }
            last = c;
            last_slot = slot[i];
            last_minute = minute[i];
        }
        ((int64_t *)requests.data)[c] += 1;
        ((int64_t *)errors.data)[c] += status[i] >= 500;
        ((double *)sizes.data)[c] += size[i];
        ((double *)sums.data)[c] += lat[i];
        int64_t b = bucket_of(lat[i], log_gamma, min_value, zero);
        Py_ssize_t p = table2_get(&pairs, c, b, &fresh);
        if (p < 0) goto end;
        if (fresh) {
            int64_t zi = 0;
            if (buf_put(&counts, &zi, 8) < 0) goto end;
        }
        ((int64_t *)counts.data)[p] += 1;
    }
    {
        PyObject *ck = PyBytes_FromStringAndSize((const char *)cells.keys, cells.n * sizeof(Key2));
        PyObject *pk = PyBytes_FromStringAndSize((const char *)pairs.keys, pairs.n * sizeof(Key2));
        if (ck && pk)
            res = struct_of(RolledType, Py_BuildValue(
                "NNNNNNN", ck, as_bytes(&requests), as_bytes(&errors), as_bytes(&sizes),
                as_bytes(&sums), pk, as_bytes(&counts)));
        else {
            Py_XDECREF(ck);
            Py_XDECREF(pk);
        }
    }
end:
    if (!res && !PyErr_Occurred()) PyErr_NoMemory();
    for (int k = 0; k < got; k++) PyBuffer_Release(&v[k]);
    if (tables) { table2_free(&cells); table2_free(&pairs); }
    buf_free(&requests); buf_free(&errors); buf_free(&sizes); buf_free(&sums); buf_free(&counts);
    return res;
}

/* ---- lines ----------------------------------------------------------------------- */

static PyObject *count_lines(PyObject *self, PyObject *arg) {
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0) return NULL;
    const char *p = b.buf, *e = p + b.len;
    Py_ssize_t n = 1;
    while ((p = memchr(p, '\n', e - p)) != NULL) { n++; p++; }
    PyBuffer_Release(&b);
    return PyLong_FromSsize_t(n);
}

static PyMethodDef methods[] = {
    {"scan_template", scan_template, METH_VARARGS,
     "scan_template(block, ops, cuts) -> columns of the lines an nginx template reads"},
    {"scan_json", scan_json, METH_VARARGS,
     "scan_json(block, fields, cuts, scale) -> columns of flat JSON lines"},
    {"rollup", rollup, METH_VARARGS,
     "rollup(slot, minute, status, size, latency, log_gamma, min_value, zero) -> cells"},
    {"count_lines", count_lines, METH_O,
     "count_lines(block) -> lines in a block without its final newline"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_scan",
    "The compiled fast path of the log collector (see collectors/logs/formats.py).", -1,
    methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__scan(void) {
    init_tables();
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    ScannedType = PyStructSequence_NewType(&SCAN_DESC);
    RolledType = PyStructSequence_NewType(&ROLLUP_DESC);
    if (!ScannedType || !RolledType) { Py_DECREF(m); return NULL; }
    /* the template ops, by name: collectors/logs/native.py reads them from here */
    static const struct { const char *name; int value; } OPS[] = {
        {"OP_LIT", OP_LIT}, {"OP_SKIP", OP_SKIP}, {"OP_TS_CLF", OP_TS_CLF},
        {"OP_TS_ISO", OP_TS_ISO}, {"OP_TS_MSEC", OP_TS_MSEC}, {"OP_REQUEST", OP_REQUEST},
        {"OP_URI", OP_URI}, {"OP_STATUS", OP_STATUS}, {"OP_BYTES", OP_BYTES},
        {"OP_NUM", OP_NUM}, {"OP_UP_NAME", OP_UP_NAME}, {"OP_UP_ADDR", OP_UP_ADDR},
        {"OP_HAPROXY", OP_HAPROXY}, {"OP_ENVOY", OP_ENVOY},
    };
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (PyModule_AddIntConstant(m, OPS[i].name, OPS[i].value) < 0) { Py_DECREF(m); return NULL; }
    if (PyModule_AddIntConstant(m, "MAX_LINE", MAX_LINE) < 0) { Py_DECREF(m); return NULL; }
    return m;
}
