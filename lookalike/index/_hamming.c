/*
 * lookalike.index._hamming: exact Hamming top-k over packed binary codes, compiled.
 *
 * The main entry point, topk(queries, codes, nbytes, k, rows, out_distances, out_rows, threads), is called by
 * lookalike/index/_compiled_topk.py, which checks the arguments first; mih_search probes multi-index hash tables
 * (lookalike/index/mih.py) and ivf_topk an inverted file's lists (lookalike.index.kernels.inverted_topk). It releases the GIL and shares the work
 * among POSIX threads of its own: by queries when there are at least four per thread, else by rows, whose
 * per-thread lists are merged (a thread start costs ~20 us, a Python thread pool's hand-off and numpy merge
 * cost more than the scan of one query over a million codes).
 *
 * Result order is the library's: distance ascending, ties by ascending database row, padded with distance
 * INT32_MAX and row -1. Rows are scanned in ascending order, so a row whose distance *equals* the current
 * k-th best can never get in (it would lose the tie): the test against the running bound is a strict `<`,
 * and an accepted row goes after every held row of the same distance.
 *
 * The scan is blocked: a tile of database codes (TILE_BYTES, kept in L2) is read against a block of queries
 * before the next tile, so a large database is streamed from memory once per query block, not once per query.
 * A search over a subset of rows (a metadata filter) copies each tile's rows into a contiguous buffer first,
 * so every scan reads consecutive codes. In the hot loops a whole step of distances is tested against the
 * bounds at once and only a step that beats one falls into the (rare) insertion.
 *
 * Three builds of the scans, chosen once at import by what the CPU has (no -march flags: a module built here
 * runs on any x86-64, and the portable C builds anywhere else):
 *   avx2     64-bit codes: 8 codes x 2 queries per step, popcount by nibble lookup (vpshufb + vpsadbw);
 *            128/256/512-bit: 4 codes x 1 query per step, lane sums folded by vphaddd;
 *   popcnt   4 queries x 1 code per step, x86-64's POPCNT instruction;
 *   portable the same loops with the compiler's generic popcount.
 * Widths that are not 8/16/32/64 bytes take a general loop over 64-bit words plus a byte tail.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#endif

#define TILE_BYTES (256 * 1024)
#define PAD_DISTANCE INT32_MAX
#define MAX_THREADS 64
/* MIH budget units: a probed bucket ~1 (a random read of the offsets, ~100 ns); a bucket member checked from the
 * bucket's own code copy, read in sequence, ~0.05 */
#define CANDIDATE_COST 0.05
#define COUNTING_K 512 /* from this k on, selection by counting (two passes) beats the sorted insertion list */
#define MIN_THREADED_PAIRS (1 << 18) /* ~0.1 ms of scan: below it a thread start costs more than it saves */

typedef struct {
    int32_t *dist; /* k, ascending */
    int64_t *rows; /* k */
    int32_t bound; /* dist[k-1]: a row must beat it strictly */
} best_t;

static inline void insert(best_t *b, int k, int32_t d, int64_t row)
{
    int i = k - 1;
    while (i > 0 && b->dist[i - 1] > d) {
        b->dist[i] = b->dist[i - 1];
        b->rows[i] = b->rows[i - 1];
        i--;
    }
    b->dist[i] = d;
    b->rows[i] = row;
    b->bound = b->dist[k - 1];
}

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

/* The row of list position j: rows[j], or j itself when every row is searched. */
#define ROW(j) (rows ? rows[j] : (j))

/* A scan: queries [0, nq) against list positions [j0, j1), whose codes lie consecutively from tile. */
typedef void (*scan_fn)(const uint8_t *queries, const uint8_t *tile, Py_ssize_t nbytes, const int64_t *rows,
                        Py_ssize_t j0, Py_ssize_t j1, best_t *best, int nq, int k);

/*
 * Scalar scans: four queries go together over each code, so a code is loaded once for four distances and one
 * combined test against the four bounds decides whether any insertion is due. Defined per width (W words of
 * 64 bits, 0 for any width) and popcount flavour.
 */
#define DEFINE_SCAN(NAME, W, POP, ATTR)                                                                  \
    ATTR static inline int32_t NAME##_dist(const uint8_t *q, const uint8_t *c, Py_ssize_t nbytes)       \
    {                                                                                                    \
        int32_t d = 0;                                                                                   \
        Py_ssize_t words = (W) ? (W) : nbytes / 8;                                                       \
        for (Py_ssize_t w = 0; w < words; w++) d += POP(load64(q + 8 * w) ^ load64(c + 8 * w));         \
        if (!(W))                                                                                        \
            for (Py_ssize_t i = 8 * words; i < nbytes; i++) d += POP((uint64_t)(q[i] ^ c[i]));           \
        return d;                                                                                        \
    }                                                                                                    \
    ATTR static void NAME(const uint8_t *queries, const uint8_t *tile, Py_ssize_t nbytes,                \
                          const int64_t *rows, Py_ssize_t j0, Py_ssize_t j1, best_t *best, int nq, int k)   \
    {                                                                                                    \
        int qi = 0;                                                                                      \
        for (; qi + 4 <= nq; qi += 4) {                                                                  \
            const uint8_t *q = queries + (Py_ssize_t)qi * nbytes;                                        \
            best_t *b = &best[qi];                                                                       \
            int32_t b0 = b[0].bound, b1 = b[1].bound, b2 = b[2].bound, b3 = b[3].bound;                  \
            for (Py_ssize_t j = j0; j < j1; j++) {                                                       \
                const uint8_t *c = tile + (j - j0) * nbytes;                                             \
                int32_t d0 = NAME##_dist(q, c, nbytes), d1 = NAME##_dist(q + nbytes, c, nbytes);         \
                int32_t d2 = NAME##_dist(q + 2 * nbytes, c, nbytes);                                     \
                int32_t d3 = NAME##_dist(q + 3 * nbytes, c, nbytes);                                     \
                if ((d0 < b0) | (d1 < b1) | (d2 < b2) | (d3 < b3)) {                                     \
                    int64_t r = ROW(j);                                                                  \
                    if (d0 < b0) { insert(&b[0], k, d0, r); b0 = b[0].bound; }                           \
                    if (d1 < b1) { insert(&b[1], k, d1, r); b1 = b[1].bound; }                           \
                    if (d2 < b2) { insert(&b[2], k, d2, r); b2 = b[2].bound; }                           \
                    if (d3 < b3) { insert(&b[3], k, d3, r); b3 = b[3].bound; }                           \
                }                                                                                        \
            }                                                                                            \
        }                                                                                                \
        for (; qi < nq; qi++) {                                                                          \
            const uint8_t *q = queries + (Py_ssize_t)qi * nbytes;                                        \
            best_t *b = &best[qi];                                                                       \
            for (Py_ssize_t j = j0; j < j1; j++) {                                                       \
                int32_t d = NAME##_dist(q, tile + (j - j0) * nbytes, nbytes);                            \
                if (d < b->bound) insert(b, k, d, ROW(j));                                               \
            }                                                                                            \
        }                                                                                                \
    }

#define POP_BASE(x) __builtin_popcountll(x)

DEFINE_SCAN(scan8_base, 1, POP_BASE, )
DEFINE_SCAN(scan16_base, 2, POP_BASE, )
DEFINE_SCAN(scan32_base, 4, POP_BASE, )
DEFINE_SCAN(scan64_base, 8, POP_BASE, )
DEFINE_SCAN(scanany_base, 0, POP_BASE, )

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define HAVE_X86_COPIES 1
#define ATTR_POPCNT __attribute__((target("popcnt")))
#define ATTR_AVX2 __attribute__((target("avx2,popcnt")))
DEFINE_SCAN(scan8_popcnt, 1, POP_BASE, ATTR_POPCNT)
DEFINE_SCAN(scan16_popcnt, 2, POP_BASE, ATTR_POPCNT)
DEFINE_SCAN(scan32_popcnt, 4, POP_BASE, ATTR_POPCNT)
DEFINE_SCAN(scan64_popcnt, 8, POP_BASE, ATTR_POPCNT)
DEFINE_SCAN(scanany_popcnt, 0, POP_BASE, ATTR_POPCNT)

/* Per 64-bit lane: the number of set bits of x (nibble lookup, then a byte sum per lane). */
ATTR_AVX2 static inline __m256i count_lanes(__m256i x, __m256i lut, __m256i low)
{
    __m256i lo = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));
    __m256i hi = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));
    return _mm256_sad_epu8(_mm256_add_epi8(lo, hi), _mm256_setzero_si256());
}

#define AVX2_CONSTANTS                                                                     \
    const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,  \
                                         0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4); \
    const __m256i low = _mm256_set1_epi8(0x0f)

/* The rare slow step of the 64-bit scan: every code of [j, j + n) against one query, scalar. */
ATTR_AVX2 static void settle8(uint64_t q, const uint8_t *tile, const int64_t *rows, Py_ssize_t j0, Py_ssize_t j,
                              int n, best_t *b, int k)
{
    for (int t = 0; t < n; t++) {
        int32_t d = POP_BASE(q ^ load64(tile + 8 * (j + t - j0)));
        if (d < b->bound) insert(b, k, d, ROW(j + t));
    }
}

/* 64-bit codes: two queries against eight consecutive codes per step; one query against sixteen for the last. */
ATTR_AVX2 static void scan8_avx2(const uint8_t *queries, const uint8_t *tile, Py_ssize_t nbytes,
                                 const int64_t *rows, Py_ssize_t j0, Py_ssize_t j1, best_t *best, int nq, int k)
{
    AVX2_CONSTANTS;
    int qi = 0;
    (void)nbytes;
    for (; qi + 2 <= nq; qi += 2) {
        best_t *b = &best[qi];
        uint64_t qa = load64(queries + 8 * qi), qb = load64(queries + 8 * (qi + 1));
        __m256i va = _mm256_set1_epi64x((long long)qa), vb = _mm256_set1_epi64x((long long)qb);
        __m256i ba = _mm256_set1_epi64x(b[0].bound), bb = _mm256_set1_epi64x(b[1].bound);
        Py_ssize_t j = j0;
        for (; j + 8 <= j1; j += 8) {
            const uint8_t *c = tile + 8 * (j - j0);
            __m256i c0 = _mm256_loadu_si256((const __m256i *)c), c1 = _mm256_loadu_si256((const __m256i *)(c + 32));
            __m256i da0 = count_lanes(_mm256_xor_si256(c0, va), lut, low);
            __m256i da1 = count_lanes(_mm256_xor_si256(c1, va), lut, low);
            __m256i db0 = count_lanes(_mm256_xor_si256(c0, vb), lut, low);
            __m256i db1 = count_lanes(_mm256_xor_si256(c1, vb), lut, low);
            __m256i hit = _mm256_or_si256(_mm256_or_si256(_mm256_cmpgt_epi64(ba, da0), _mm256_cmpgt_epi64(ba, da1)),
                                          _mm256_or_si256(_mm256_cmpgt_epi64(bb, db0), _mm256_cmpgt_epi64(bb, db1)));
            if (!_mm256_testz_si256(hit, hit)) {
                settle8(qa, tile, rows, j0, j, 8, &b[0], k);
                settle8(qb, tile, rows, j0, j, 8, &b[1], k);
                ba = _mm256_set1_epi64x(b[0].bound);
                bb = _mm256_set1_epi64x(b[1].bound);
            }
        }
        settle8(qa, tile, rows, j0, j, (int)(j1 - j), &b[0], k);
        settle8(qb, tile, rows, j0, j, (int)(j1 - j), &b[1], k);
    }
    for (; qi < nq; qi++) {
        best_t *b = &best[qi];
        uint64_t qa = load64(queries + 8 * qi);
        __m256i va = _mm256_set1_epi64x((long long)qa), ba = _mm256_set1_epi64x(b->bound);
        Py_ssize_t j = j0;
        for (; j + 16 <= j1; j += 16) {
            const uint8_t *c = tile + 8 * (j - j0);
            __m256i d0 = count_lanes(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)c), va), lut, low);
            __m256i d1 = count_lanes(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(c + 32)), va), lut, low);
            __m256i d2 = count_lanes(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(c + 64)), va), lut, low);
            __m256i d3 = count_lanes(_mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(c + 96)), va), lut, low);
            __m256i hit = _mm256_or_si256(_mm256_or_si256(_mm256_cmpgt_epi64(ba, d0), _mm256_cmpgt_epi64(ba, d1)),
                                          _mm256_or_si256(_mm256_cmpgt_epi64(ba, d2), _mm256_cmpgt_epi64(ba, d3)));
            if (!_mm256_testz_si256(hit, hit)) {
                settle8(qa, tile, rows, j0, j, 16, b, k);
                ba = _mm256_set1_epi64x(b->bound);
            }
        }
        settle8(qa, tile, rows, j0, j, (int)(j1 - j), b, k);
    }
}

/*
 * 128/256/512-bit codes (W = 2, 4, 8 words): one query against four consecutive codes per step. Each code's
 * W words are xored and counted per byte (byte counts of up to 8 words still fit a byte), summed per lane by
 * vpsadbw, and the four codes' lane sums folded into four 32-bit distances by two vphaddd and one add.
 */
#define DEFINE_SCAN_AVX2_WIDE(NAME, W, SCALAR)                                                                 \
    ATTR_AVX2 static void NAME(const uint8_t *queries, const uint8_t *tile, Py_ssize_t nbytes,                  \
                               const int64_t *rows, Py_ssize_t j0, Py_ssize_t j1, best_t *best, int nq, int k)   \
    {                                                                                                          \
        AVX2_CONSTANTS;                                                                                        \
        enum { Y = (W) * 8 / 32 > 0 ? (W) * 8 / 32 : 1 }; /* ymm registers per code (1 or 2), or half of one */ \
        for (int qi = 0; qi < nq; qi++) {                                                                      \
            const uint8_t *q = queries + (Py_ssize_t)qi * nbytes;                                              \
            best_t *b = &best[qi];                                                                             \
            __m256i qv[2];                                                                                     \
            if ((W) == 2) {                                                                                    \
                __m128i h = _mm_loadu_si128((const __m128i *)q);                                               \
                qv[0] = _mm256_set_m128i(h, h);                                                                \
            } else {                                                                                           \
                for (int y = 0; y < Y; y++) qv[y] = _mm256_loadu_si256((const __m256i *)(q + 32 * y));         \
            }                                                                                                  \
            __m128i bv = _mm_set1_epi32(b->bound);                                                             \
            Py_ssize_t j = j0;                                                                                 \
            for (; j + 4 <= j1; j += 4) {                                                                      \
                const uint8_t *c = tile + (j - j0) * (W) * 8;                                                  \
                __m256i s[4];                                                                                  \
                if ((W) == 2) { /* two codes per register: lanes (0,1) and (2,3) */                            \
                    __m256i x0 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)c), qv[0]);              \
                    __m256i x1 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(c + 32)), qv[0]);       \
                    s[0] = count_lanes(x0, lut, low);                                                          \
                    s[1] = count_lanes(x1, lut, low);                                                          \
                    __m256i h = _mm256_hadd_epi32(s[0], s[1]); /* per half: a0 a1 b0 b1 (dwords) */            \
                    h = _mm256_hadd_epi32(h, h);               /* per half: a0+a1 b0+b1 .. */                  \
                    /* half 0 holds codes 0 and 2, half 1 codes 1 and 3 */                                     \
                    __m128i lo = _mm256_castsi256_si128(h), hi = _mm256_extracti128_si256(h, 1);               \
                    __m128i d = _mm_unpacklo_epi32(lo, hi); /* codes 0 1 2 3 */                                \
                    if (_mm_movemask_epi8(_mm_cmpgt_epi32(bv, d))) {                                           \
                        for (int t = 0; t < 4; t++) {                                                          \
                            int32_t e = SCALAR##_dist(q, c + t * 16, 16);                                      \
                            if (e < b->bound) insert(b, k, e, ROW(j + t));                                     \
                        }                                                                                      \
                        bv = _mm_set1_epi32(b->bound);                                                         \
                    }                                                                                          \
                    continue;                                                                                  \
                }                                                                                              \
                for (int t = 0; t < 4; t++) {                                                                  \
                    const uint8_t *ct = c + t * (W) * 8;                                                       \
                    __m256i x = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)ct), qv[0]);             \
                    __m256i lo_n = _mm256_shuffle_epi8(lut, _mm256_and_si256(x, low));                         \
                    __m256i hi_n = _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x, 4), low));   \
                    __m256i bytes = _mm256_add_epi8(lo_n, hi_n);                                               \
                    if (Y == 2) {                                                                              \
                        __m256i x2 = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(ct + 32)), qv[1]);  \
                        bytes = _mm256_add_epi8(bytes, _mm256_shuffle_epi8(lut, _mm256_and_si256(x2, low)));   \
                        bytes = _mm256_add_epi8(                                                               \
                            bytes, _mm256_shuffle_epi8(lut, _mm256_and_si256(_mm256_srli_epi16(x2, 4), low))); \
                    }                                                                                          \
                    s[t] = _mm256_sad_epu8(bytes, _mm256_setzero_si256());                                     \
                }                                                                                              \
                __m256i u = _mm256_hadd_epi32(s[0], s[1]), v = _mm256_hadd_epi32(s[2], s[3]);                  \
                __m256i w = _mm256_hadd_epi32(u, v); /* per half: a b c d, partial sums */                    \
                __m128i d = _mm_add_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));          \
                if (_mm_movemask_epi8(_mm_cmpgt_epi32(bv, d))) {                                               \
                    for (int t = 0; t < 4; t++) {                                                              \
                        int32_t e = SCALAR##_dist(q, c + t * (W) * 8, (W) * 8);                                \
                        if (e < b->bound) insert(b, k, e, ROW(j + t));                                         \
                    }                                                                                          \
                    bv = _mm_set1_epi32(b->bound);                                                             \
                }                                                                                              \
            }                                                                                                  \
            for (; j < j1; j++) {                                                                              \
                int32_t e = SCALAR##_dist(q, tile + (j - j0) * (W) * 8, (W) * 8);                              \
                if (e < b->bound) insert(b, k, e, ROW(j));                                                     \
            }                                                                                                  \
        }                                                                                                      \
    }

DEFINE_SCAN_AVX2_WIDE(scan16_avx2, 2, scan16_popcnt)
DEFINE_SCAN_AVX2_WIDE(scan32_avx2, 4, scan32_popcnt)
DEFINE_SCAN_AVX2_WIDE(scan64_avx2, 8, scan64_popcnt)
#endif

static int use_popcnt = 0, use_avx2 = 0;

static scan_fn pick(Py_ssize_t nbytes)
{
#ifdef HAVE_X86_COPIES
    if (use_avx2) {
        switch (nbytes) {
        case 8: return scan8_avx2;
        case 16: return scan16_avx2;
        case 32: return scan32_avx2;
        case 64: return scan64_avx2;
        default: break;
        }
    }
    if (use_popcnt) {
        switch (nbytes) {
        case 8: return scan8_popcnt;
        case 16: return scan16_popcnt;
        case 32: return scan32_popcnt;
        case 64: return scan64_popcnt;
        default: return scanany_popcnt;
        }
    }
#endif
    switch (nbytes) {
    case 8: return scan8_base;
    case 16: return scan16_base;
    case 32: return scan32_base;
    case 64: return scan64_base;
    default: return scanany_base;
    }
}

static int check_buffer(Py_buffer *view, Py_ssize_t itemsize, const char *name)
{
    if (view->len % itemsize) {
        PyErr_Format(PyExc_ValueError, "%s: %zd bytes is not a whole number of %zd-byte items", name, view->len,
                     itemsize);
        return -1;
    }
    return 0;
}

/*
 * Large k: selection by counting instead of a sorted insertion list (whose shifts grow with k: k = 2000 over 1M
 * codes took 15 ms that way). Distances lie in [0, 8 * nbytes], so a first pass counts each query's distances,
 * which fixes the k-th distance T and how many rows at T get in (the lowest rows, as the scan keeps them); a
 * second pass writes each row with d < T, and the first of those at T, straight to its place in the result
 * (a counting sort: rows come in ascending order, so each distance's rows stay in row order). Two passes over the
 * codes whatever k is. Threads split the rows; the driver combines their counts between the passes.
 */
typedef struct {
    const uint8_t *queries, *codes;
    const int64_t *rows;
    Py_ssize_t nbytes, nq, j0, j1, tile;
    int k, bins, phase, failed;
    int64_t *hist;  /* this thread's counts, nq * bins */
    int64_t *pos;   /* phase 2: this thread's next output position, nq * bins */
    int64_t *quota; /* phase 2: rows at distance T[q] this thread may still write, nq */
    const int32_t *T;
    int32_t *dist;
    int64_t *found;
    void (*pass)(void *job, const uint8_t *tile, Py_ssize_t j0, Py_ssize_t j1);
} count_job_t;

#define DEFINE_COUNT(NAME, DIST, ATTR)                                                                    \
    ATTR static void NAME(void *arg, const uint8_t *tile, Py_ssize_t j0, Py_ssize_t j1)                   \
    {                                                                                                     \
        count_job_t *job = arg;                                                                           \
        const int64_t *rows = job->rows;                                                                  \
        Py_ssize_t nbytes = job->nbytes;                                                                  \
        for (Py_ssize_t q = 0; q < job->nq; q++) {                                                        \
            const uint8_t *qv = job->queries + q * nbytes;                                                \
            int64_t *hist = job->hist + q * job->bins;                                                    \
            if (job->phase == 1) {                                                                        \
                for (Py_ssize_t j = j0; j < j1; j++) hist[DIST(qv, tile + (j - j0) * nbytes, nbytes)]++;   \
                continue;                                                                                 \
            }                                                                                             \
            int32_t T = job->T[q];                                                                        \
            int64_t *pos = job->pos + q * job->bins, *quota = &job->quota[q];                             \
            int32_t *dist = job->dist + q * job->k;                                                       \
            int64_t *found = job->found + q * job->k;                                                     \
            for (Py_ssize_t j = j0; j < j1; j++) {                                                        \
                int32_t d = DIST(qv, tile + (j - j0) * nbytes, nbytes);                                   \
                if (d > T || (d == T && *quota == 0)) continue;                                           \
                if (d == T) (*quota)--;                                                                   \
                int64_t at = pos[d]++;                                                                    \
                dist[at] = d;                                                                             \
                found[at] = ROW(j);                                                                       \
            }                                                                                             \
        }                                                                                                 \
    }

DEFINE_COUNT(count8_base, scan8_base_dist, )
DEFINE_COUNT(count16_base, scan16_base_dist, )
DEFINE_COUNT(count32_base, scan32_base_dist, )
DEFINE_COUNT(count64_base, scan64_base_dist, )
DEFINE_COUNT(countany_base, scanany_base_dist, )
#ifdef HAVE_X86_COPIES
DEFINE_COUNT(count8_popcnt, scan8_popcnt_dist, ATTR_POPCNT)
DEFINE_COUNT(count16_popcnt, scan16_popcnt_dist, ATTR_POPCNT)
DEFINE_COUNT(count32_popcnt, scan32_popcnt_dist, ATTR_POPCNT)
DEFINE_COUNT(count64_popcnt, scan64_popcnt_dist, ATTR_POPCNT)
DEFINE_COUNT(countany_popcnt, scanany_popcnt_dist, ATTR_POPCNT)
#endif

typedef void (*count_fn)(void *, const uint8_t *, Py_ssize_t, Py_ssize_t);

static count_fn pick_count(Py_ssize_t nbytes)
{
#ifdef HAVE_X86_COPIES
    if (use_popcnt) {
        switch (nbytes) {
        case 8: return count8_popcnt;
        case 16: return count16_popcnt;
        case 32: return count32_popcnt;
        case 64: return count64_popcnt;
        default: return countany_popcnt;
        }
    }
#endif
    switch (nbytes) {
    case 8: return count8_base;
    case 16: return count16_base;
    case 32: return count32_base;
    case 64: return count64_base;
    default: return countany_base;
    }
}

/* The codes of list positions [j0, j1): in place when every row is searched, else copied into `gathered`. */
static inline const uint8_t *tile_codes(const uint8_t *codes, const int64_t *rows, Py_ssize_t nbytes, Py_ssize_t j0,
                                        Py_ssize_t j1, uint8_t *gathered)
{
    if (!rows) return codes + j0 * nbytes;
    for (Py_ssize_t j = j0; j < j1; j++) memcpy(gathered + (j - j0) * nbytes, codes + rows[j] * nbytes, (size_t)nbytes);
    return gathered;
}

/* Run fn on each of `parts` jobs (job_size bytes apart), the first on this thread and the others on threads of
 * their own; a job whose thread cannot be started runs here after the rest. Returns when all are done. */
static void run_parallel(void *(*fn)(void *), void *jobs, size_t job_size, int parts)
{
    pthread_t tids[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    char *at = jobs;
    for (int p = 1; p < parts; p++) started[p] = pthread_create(&tids[p], NULL, fn, at + p * job_size) == 0;
    fn(at);
    for (int p = 1; p < parts; p++) {
        if (started[p])
            pthread_join(tids[p], NULL);
        else
            fn(at + p * job_size);
    }
}

static void *run_count_job(void *arg)
{
    count_job_t *job = arg;
    Py_ssize_t nbytes = job->nbytes, tile = job->tile;
    uint8_t *gathered = job->rows ? malloc((size_t)(tile * nbytes)) : NULL;
    if (job->rows && !gathered) {
        job->failed = 1;
        return NULL;
    }
    for (Py_ssize_t j0 = job->j0; j0 < job->j1; j0 += tile) {
        Py_ssize_t j1 = j0 + tile < job->j1 ? j0 + tile : job->j1;
        job->pass(job, tile_codes(job->codes, job->rows, nbytes, j0, j1, gathered), j0, j1);
    }
    free(gathered);
    return NULL;
}

/* Run every job's pass on its own thread (the first on this one); returns nonzero when one ran out of memory. */
static int run_count_phase(count_job_t *jobs, int parts)
{
    int failed = 0;
    run_parallel(run_count_job, jobs, sizeof jobs[0], parts);
    for (int p = 0; p < parts; p++) failed |= jobs[p].failed;
    return failed;
}

/* The counting selection over list positions [0, m), split by rows over `parts` threads. Called without the GIL;
 * returns 0, or -1 when memory ran out. dist/found are already padded. */
static int count_select(const uint8_t *queries, const uint8_t *codes, const int64_t *rows, Py_ssize_t nbytes,
                        Py_ssize_t nq, Py_ssize_t m, int k, Py_ssize_t tile, int parts, int32_t *dist, int64_t *found)
{
    int bins = (int)(8 * nbytes + 1), rc = -1;
    count_job_t jobs[MAX_THREADS];
    int64_t *hist = calloc((size_t)(parts * nq * bins), sizeof(int64_t));
    int64_t *pos = calloc((size_t)(parts * nq * bins), sizeof(int64_t));
    int64_t *quota = calloc((size_t)(parts * nq), sizeof(int64_t));
    int32_t *T = calloc((size_t)(nq ? nq : 1), sizeof(int32_t));
    if (!hist || !pos || !quota || !T) goto out;
    for (int p = 0; p < parts; p++)
        jobs[p] = (count_job_t){.queries = queries, .codes = codes, .rows = rows, .nbytes = nbytes, .nq = nq,
                                .j0 = m * p / parts, .j1 = m * (p + 1) / parts, .tile = tile, .k = k, .bins = bins,
                                .phase = 1, .failed = 0, .hist = hist + (Py_ssize_t)p * nq * bins,
                                .pos = pos + (Py_ssize_t)p * nq * bins, .quota = quota + (Py_ssize_t)p * nq, .T = T,
                                .dist = dist, .found = found, .pass = pick_count(nbytes)};
    if (run_count_phase(jobs, parts)) goto out;
    Py_ssize_t want = k < m ? k : m;
    for (Py_ssize_t q = 0; q < nq; q++) {
        /* the k-th distance T, then each thread's first output position per distance and its quota at T */
        int64_t total = 0, before_T = 0;
        int t = 0;
        for (; t < bins; t++) {
            int64_t here = 0;
            for (int p = 0; p < parts; p++) here += jobs[p].hist[q * bins + t];
            if (total + here >= want) break;
            total += here;
        }
        before_T = total;
        T[q] = t < bins ? t : bins - 1;
        int64_t base = 0;
        for (int v = 0; v <= T[q]; v++) {
            int64_t seen = 0;
            for (int p = 0; p < parts; p++) {
                int64_t count = jobs[p].hist[q * bins + v];
                jobs[p].pos[q * bins + v] = base + seen;
                if (v == T[q]) {
                    int64_t left = want - before_T - seen;
                    jobs[p].quota[q] = left <= 0 ? 0 : left < count ? left : count;
                }
                seen += count;
            }
            base += seen;
        }
    }
    for (int p = 0; p < parts; p++) jobs[p].phase = 2;
    if (run_count_phase(jobs, parts)) goto out;
    rc = 0;
out:
    free(hist);
    free(pos);
    free(quota);
    free(T);
    return rc;
}

/* One thread's share: queries [q0, q1) against list positions [j0, j1), into its own result arrays. */
typedef struct {
    const uint8_t *queries, *codes;
    const int64_t *rows;
    Py_ssize_t nbytes, q0, q1, j0, j1, tile;
    int k;
    scan_fn scan;
    int32_t *dist; /* (q1 - q0) * k */
    int64_t *found;
    int failed; /* out of memory */
} job_t;

static void *run_job(void *arg)
{
    job_t *job = arg;
    Py_ssize_t nq = job->q1 - job->q0, nbytes = job->nbytes, k = job->k;
    Py_ssize_t tile = job->tile;
    best_t *best = malloc(sizeof(best_t) * (size_t)(nq ? nq : 1));
    uint8_t *gathered = job->rows ? malloc((size_t)(tile * nbytes)) : NULL;
    if (!best || (job->rows && !gathered)) {
        job->failed = 1;
        free(best);
        free(gathered);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nq * k; i++) {
        job->dist[i] = PAD_DISTANCE;
        job->found[i] = -1;
    }
    for (Py_ssize_t i = 0; i < nq; i++) {
        best[i].dist = job->dist + i * k;
        best[i].rows = job->found + i * k;
        best[i].bound = PAD_DISTANCE;
    }
    const uint8_t *queries = job->queries + job->q0 * nbytes;
    /* Tiles outer, queries inner: the database is read once, each tile against every query while in cache. */
    for (Py_ssize_t j0 = job->j0; j0 < job->j1; j0 += tile) {
        Py_ssize_t j1 = j0 + tile < job->j1 ? j0 + tile : job->j1;
        job->scan(queries, tile_codes(job->codes, job->rows, nbytes, j0, j1, gathered), nbytes, job->rows, j0, j1,
                  best, (int)nq, (int)k);
    }
    free(best);
    free(gathered);
    return NULL;
}

/* Merge per-thread top-k lists of the same queries (part p's in dists[p] / founds[p], nq * k each, ascending) into
 * dist / found: on equal distances the lower part first, so parts over consecutive ranges (of rows, or of inverted
 * lists) merge as one scan in order would have kept them. */
static void merge_parts(int32_t *const *dists, int64_t *const *founds, int parts, Py_ssize_t nq, Py_ssize_t k,
                        int32_t *dist, int64_t *found)
{
    Py_ssize_t at[MAX_THREADS];
    for (Py_ssize_t q = 0; q < nq; q++) {
        for (int p = 0; p < parts; p++) at[p] = 0;
        for (Py_ssize_t i = 0; i < k; i++) {
            int take = -1;
            int32_t d = 0;
            for (int p = 0; p < parts; p++) {
                if (at[p] >= k) continue;
                int32_t e = dists[p][q * k + at[p]];
                if (take < 0 || e < d) {
                    d = e;
                    take = p;
                }
            }
            dist[q * k + i] = dists[take][q * k + at[take]];
            found[q * k + i] = founds[take][q * k + at[take]];
            at[take]++;
        }
    }
}

PyDoc_STRVAR(topk_doc,
"topk(queries, codes, nbytes, k, rows, out_distances, out_rows, threads, tile_rows=0, min_pairs=-1,\n"
"     counting_k=512)\n\n"
"The k rows of codes nearest each query in Hamming distance, written into out_distances (int32, nq*k) and\n"
"out_rows (int64, nq*k), ascending, ties by ascending row, padded with INT32_MAX and -1. queries and codes\n"
"are C-contiguous uint8 buffers of nbytes per code; rows is None (every row) or an int64 buffer of ascending\n"
"row indices to search. Up to `threads` POSIX threads share the work (by queries when there are many, else\n"
"by rows, merged after) once nq * rows >= min_pairs (-1: the built-in threshold); tile_rows > 0 sets the rows\n"
"per tile (tests use it to cross tile boundaries); from k >= counting_k on the selection counts distances in\n"
"two passes instead of keeping sorted lists. The GIL is released while the threads run.");

static PyObject *topk(PyObject *self, PyObject *args)
{
    Py_buffer qv = {0}, cv = {0}, rv = {0}, dv = {0}, ov = {0};
    Py_ssize_t nbytes, k;
    int threads;
    Py_ssize_t tile_rows = 0, counting_k = COUNTING_K;
    double min_pairs = -1;
    PyObject *rows_obj, *result = NULL;
    job_t jobs[MAX_THREADS];
    int parts = 1, by_rows = 0, failed = 0;
    memset(jobs, 0, sizeof jobs);
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nnOw*w*i|ndn", &qv, &cv, &nbytes, &k, &rows_obj, &dv, &ov, &threads, &tile_rows,
                          &min_pairs, &counting_k))
        return NULL;
    int have_rows = rows_obj != Py_None;
    if (have_rows && PyObject_GetBuffer(rows_obj, &rv, PyBUF_C_CONTIGUOUS) < 0) goto done;
    if (nbytes < 1 || k < 1 || k > INT32_MAX / 2) {
        PyErr_SetString(PyExc_ValueError, "nbytes and k must be >= 1");
        goto done;
    }
    if (check_buffer(&qv, nbytes, "queries") || check_buffer(&cv, nbytes, "codes") ||
        (have_rows && check_buffer(&rv, 8, "rows")) || check_buffer(&dv, 4, "out_distances") ||
        check_buffer(&ov, 8, "out_rows"))
        goto done;
    Py_ssize_t nq = qv.len / nbytes, n = cv.len / nbytes, m = have_rows ? rv.len / 8 : n;
    if (dv.len / 4 != nq * k || ov.len / 8 != nq * k) {
        PyErr_SetString(PyExc_ValueError, "out_distances and out_rows must hold nq * k items");
        goto done;
    }
    if (nq > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "too many queries for one call");
        goto done;
    }
    const int64_t *rows = have_rows ? (const int64_t *)rv.buf : NULL;
    if (rows) {
        for (Py_ssize_t j = 0; j < m; j++) {
            if (rows[j] < 0 || rows[j] >= n || (j && rows[j] <= rows[j - 1])) {
                PyErr_SetString(PyExc_ValueError, "rows must be ascending, unique and inside codes");
                goto done;
            }
        }
    }
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    if (min_pairs < 0) min_pairs = MIN_THREADED_PAIRS;
    if (tile_rows <= 0) tile_rows = TILE_BYTES / nbytes > 64 ? TILE_BYTES / nbytes : 64;
    if (threads > 1 && (double)nq * (double)m >= min_pairs) {
        parts = threads;
        by_rows = nq < 4 * parts;
    }
    int32_t *dist = (int32_t *)dv.buf;
    int64_t *found = (int64_t *)ov.buf;
    if (k >= counting_k) {
        int rc;
        for (Py_ssize_t i = 0; i < nq * k; i++) {
            dist[i] = PAD_DISTANCE;
            found[i] = -1;
        }
        Py_BEGIN_ALLOW_THREADS
        rc = count_select(qv.buf, cv.buf, rows, nbytes, nq, m, (int)k, tile_rows, parts, dist, found);
        Py_END_ALLOW_THREADS
        if (rc) {
            PyErr_NoMemory();
            goto done;
        }
        by_rows = 0;
        result = Py_None;
        Py_INCREF(result);
        goto done;
    }
    for (int p = 0; p < parts; p++) {
        job_t *job = &jobs[p];
        job->queries = qv.buf;
        job->codes = cv.buf;
        job->rows = rows;
        job->nbytes = nbytes;
        job->k = (int)k;
        job->tile = tile_rows;
        job->scan = pick(nbytes);
        job->q0 = by_rows ? 0 : nq * p / parts;
        job->q1 = by_rows ? nq : nq * (p + 1) / parts;
        job->j0 = by_rows ? m * p / parts : 0;
        job->j1 = by_rows ? m * (p + 1) / parts : m;
        if (by_rows) {
            job->dist = PyMem_RawMalloc(sizeof(int32_t) * (size_t)(nq * k));
            job->found = PyMem_RawMalloc(sizeof(int64_t) * (size_t)(nq * k));
            if (!job->dist || !job->found) {
                PyErr_NoMemory();
                goto done;
            }
        } else {
            job->dist = dist + job->q0 * k;
            job->found = found + job->q0 * k;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    run_parallel(run_job, jobs, sizeof jobs[0], parts);
    for (int p = 0; p < parts; p++) failed |= jobs[p].failed;
    if (!failed && by_rows) {
        int32_t *dists[MAX_THREADS];
        int64_t *founds[MAX_THREADS];
        for (int p = 0; p < parts; p++) {
            dists[p] = jobs[p].dist;
            founds[p] = jobs[p].found;
        }
        merge_parts(dists, founds, parts, nq, k, dist, found);
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    if (by_rows)
        for (int p = 0; p < parts; p++) {
            PyMem_RawFree(jobs[p].dist);
            PyMem_RawFree(jobs[p].found);
        }
    PyBuffer_Release(&qv);
    PyBuffer_Release(&cv);
    if (have_rows && rv.obj) PyBuffer_Release(&rv);
    PyBuffer_Release(&dv);
    PyBuffer_Release(&ov);
    return result;
}

static PyObject *flavour(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    return PyUnicode_FromString(use_avx2 ? "avx2" : use_popcnt ? "popcnt" : "portable");
}

/* ---- Multi-index hashing (lookalike/index/mih.py builds the tables; this probes them) -------------------- */

/* Bits [start, start + width) of a code, bit i being bit i % 8 of byte i / 8 (width <= 24). */
static inline uint32_t substring(const uint8_t *code, int start, int width)
{
    int first = start / 8, last = (start + width - 1) / 8;
    uint64_t v = 0;
    for (int b = first; b <= last; b++) v |= (uint64_t)code[b] << (8 * (b - first));
    return (uint32_t)((v >> (start - 8 * first)) & ((1u << width) - 1));
}

static inline int32_t distance_any(const uint8_t *q, const uint8_t *c, Py_ssize_t nbytes)
{
    int32_t d = 0;
    Py_ssize_t words = nbytes / 8;
    for (Py_ssize_t w = 0; w < words; w++) d += __builtin_popcountll(load64(q + 8 * w) ^ load64(c + 8 * w));
    for (Py_ssize_t i = 8 * words; i < nbytes; i++) d += __builtin_popcount((unsigned)(q[i] ^ c[i]));
    return d;
}

/* (d, row) beats the list's last entry? The list is ordered by (distance, row), like the scan's. */
static inline int beats(const best_t *b, int count, int k, int32_t d, int64_t row)
{
    return count < k || d < b->dist[k - 1] || (d == b->dist[k - 1] && row < b->rows[k - 1]);
}

/* Insert (d, row) in (distance, row) order unless the row is already there (a row found by two tables). */
static inline void insert_keyed(best_t *b, int *count, int k, int32_t d, int64_t row)
{
    for (int i = 0; i < *count && b->dist[i] <= d; i++)
        if (b->dist[i] == d && b->rows[i] == row) return;
    int i = *count < k ? (*count)++ : k - 1;
    while (i > 0 && (b->dist[i - 1] > d || (b->dist[i - 1] == d && b->rows[i - 1] > row))) {
        b->dist[i] = b->dist[i - 1];
        b->rows[i] = b->rows[i - 1];
        i--;
    }
    b->dist[i] = d;
    b->rows[i] = row;
}

typedef struct {
    const uint8_t *queries, *codes, *allowed, *inline_codes;
    Py_ssize_t nbytes, q0, q1, n_delta, n, n_built;
    int k, m;
    const int32_t *widths, *starts;
    const int64_t *offset_base, *member_base, *cur_of_build, *delta;
    const int32_t *offsets, *members;
    double budget, step_cost;
    int32_t *dist;
    int64_t *found;
    uint8_t *fell_back;
    int64_t candidates, n_members;
} mih_job_t;

/* One query: probe the tables radius by radius until no unseen row can beat the k-th best, or the budget is
 * spent (then fell_back is set and the caller scans). */
static void mih_query(mih_job_t *job, Py_ssize_t qi)
{
    const uint8_t *q = job->queries + qi * job->nbytes;
    int k = job->k, m = job->m, count = 0;
    best_t b = {job->dist + qi * k, job->found + qi * k, PAD_DISTANCE};
    for (int i = 0; i < k; i++) {
        b.dist[i] = PAD_DISTANCE;
        b.rows[i] = -1;
    }
    /* The delta's rows ascend, so they are read nearly in sequence: they cost like bucket members. */
    double work = (double)job->n_delta * CANDIDATE_COST;
    if (job->budget >= 0 && work > job->budget) {
        job->fell_back[qi] = 1;
        return;
    }
    for (Py_ssize_t j = 0; j < job->n_delta; j++) {
        int64_t row = job->delta[j];
        if (job->allowed && !job->allowed[row]) continue;
        int32_t d = distance_any(q, job->codes + row * job->nbytes, job->nbytes);
        if (beats(&b, count, k, d, row)) insert_keyed(&b, &count, k, d, row);
    }
    uint32_t qsub[64];
    int max_width = 0;
    for (int t = 0; t < m; t++) {
        qsub[t] = substring(q, job->starts[t], job->widths[t]);
        if (job->widths[t] > max_width) max_width = job->widths[t];
    }
    for (int r = 0; r <= max_width; r++) {
        for (int t = 0; t < m; t++) {
            if (count == k && b.dist[k - 1] < (int64_t)m * r + t) return; /* every unseen row is farther */
            int w = job->widths[t];
            if (r > w) continue;
            /* C(w, r) probes */
            double probes = 1;
            for (int i = 0; i < r; i++) probes = probes * (w - i) / (i + 1);
            work += job->step_cost + probes;
            if (job->budget >= 0 && work > job->budget) {
                job->fell_back[qi] = 1;
                return;
            }
            const int32_t *offsets = job->offsets + job->offset_base[t];
            const int32_t *members = job->members + job->member_base[t];
            uint32_t limit = 1u << w;
            /* every w-bit value with r bits set, in Gosper's order */
            uint32_t v = r ? (1u << r) - 1 : 0;
            while (v < limit) {
                uint32_t probe = qsub[t] ^ v;
                /* Bounds are clamped rather than trusted: the tables are checked nowhere else, and a check of
                 * every offset and member per call would cost more than the search. */
                int64_t lo = offsets[probe] < 0 ? 0 : offsets[probe], hi = offsets[probe + 1];
                if (hi > job->n_members - job->member_base[t]) hi = job->n_members - job->member_base[t];
                const uint8_t *inline_codes = job->inline_codes + job->member_base[t] * job->nbytes;
                for (int64_t i = lo; i < hi; i++) {
                    /* The bucket's own copy of each code is read in order; only a code that could get in costs
                     * the random reads of its row (live? allowed? which row, for the tie?). A stale copy (row
                     * removed or rewritten since the build) is dropped there: rewritten rows are in the delta. */
                    job->candidates++;
                    work += CANDIDATE_COST;
                    int32_t d = distance_any(q, inline_codes + i * job->nbytes, job->nbytes);
                    if (count == k && d > b.dist[k - 1]) continue;
                    int32_t built = members[i];
                    if (built < 0 || built >= job->n_built) continue;
                    int64_t row = job->cur_of_build[built];
                    if (row < 0 || row >= job->n || (job->allowed && !job->allowed[row])) continue;
                    if (beats(&b, count, k, d, row)) insert_keyed(&b, &count, k, d, row);
                }
                if (r == 0) break;
                uint32_t c = v & -v, nx = v + c; /* next value with the same number of bits */
                v = (((nx ^ v) >> 2) / c) | nx;
            }
        }
    }
}

static void *run_mih_job(void *arg)
{
    mih_job_t *job = arg;
    for (Py_ssize_t qi = job->q0; qi < job->q1; qi++) mih_query(job, qi);
    return NULL;
}

PyDoc_STRVAR(mih_doc,
"mih_search(queries, codes, nbytes, k, widths, starts, offsets, offset_base, members, member_codes, member_base,\n"
"           cur_of_build, delta, allowed, budget, step_cost, out_distances, out_rows, out_fell_back, threads)\n\n"
"Multi-index hashing k-NN over the tables lookalike/index/mih.py built: widths/starts (int32, m) cut the code\n"
"into substrings; table t's bucket of value v holds members[member_base[t] + offsets[offset_base[t] + v] ...\n"
"offsets[offset_base[t] + v + 1]] (offsets and members int32; members are build rows, member_codes their codes\n"
"in the same order, read instead of the rows' own), mapped to current rows by cur_of_build (-1: gone). delta\n"
"(int64) lists rows the tables miss, checked first; allowed (uint8 per row, or None) filters. A query whose\n"
"work (probed buckets + checked rows + step_cost per table step) would pass budget (< 0: none) is left to\n"
"the caller, marked in out_fell_back. Returns the number of rows checked.");

static PyObject *mih_search(PyObject *self, PyObject *args)
{
    Py_buffer qv = {0}, cv = {0}, wv = {0}, sv = {0}, ofv = {0}, obv = {0}, mv = {0}, mbv = {0}, cbv = {0},
              dlv = {0}, av = {0}, dv = {0}, ov = {0}, fv = {0}, icv = {0};
    Py_ssize_t nbytes, k;
    double budget, step_cost;
    int threads;
    PyObject *allowed_obj, *result = NULL;
    mih_job_t jobs[MAX_THREADS];
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*nny*y*y*y*y*y*y*y*y*Oddw*w*w*i", &qv, &cv, &nbytes, &k, &wv, &sv, &ofv, &obv,
                          &mv, &icv, &mbv, &cbv, &dlv, &allowed_obj, &budget, &step_cost, &dv, &ov, &fv, &threads))
        return NULL;
    int have_allowed = allowed_obj != Py_None;
    if (have_allowed && PyObject_GetBuffer(allowed_obj, &av, PyBUF_C_CONTIGUOUS) < 0) goto done;
    Py_ssize_t m = wv.len / 4, nq = nbytes > 0 ? qv.len / nbytes : 0, n = nbytes > 0 ? cv.len / nbytes : 0;
    if (nbytes < 1 || k < 1 || k > INT32_MAX / 2 || m < 1 || m > 64 || sv.len != wv.len || obv.len != 8 * m ||
        mbv.len != 8 * m || dv.len != 4 * nq * k || ov.len != 8 * nq * k || fv.len != nq ||
        (have_allowed && av.len != n) || qv.len % nbytes || cv.len % nbytes || icv.len != (mv.len / 4) * nbytes) {
        PyErr_SetString(PyExc_ValueError, "mih_search: inconsistent buffer sizes");
        goto done;
    }
    const int32_t *widths = wv.buf, *starts = sv.buf;
    const int64_t *offset_base = obv.buf, *member_base = mbv.buf, *cur_of_build = cbv.buf;
    const int32_t *offsets = ofv.buf;
    const int64_t *delta = dlv.buf;
    Py_ssize_t n_offsets = ofv.len / 4, n_members = mv.len / 4, n_built = cbv.len / 8, n_delta = dlv.len / 8;
    const int32_t *members = mv.buf;
    for (Py_ssize_t t = 0; t < m; t++) { /* every index the probes can form must lie inside the buffers */
        if (widths[t] < 1 || widths[t] > 24 || starts[t] < 0 || starts[t] + widths[t] > 8 * nbytes ||
            offset_base[t] < 0 || offset_base[t] + ((int64_t)1 << widths[t]) + 1 > n_offsets || member_base[t] < 0 ||
            member_base[t] > n_members) {
            PyErr_SetString(PyExc_ValueError, "mih_search: a table lies outside its buffers");
            goto done;
        }
    }
    for (Py_ssize_t i = 0; i < n_delta; i++)
        if (delta[i] < 0 || delta[i] >= n) {
            PyErr_SetString(PyExc_ValueError, "mih_search: a delta row is outside the codes");
            goto done;
        }
    int parts = threads < 1 ? 1 : threads > MAX_THREADS ? MAX_THREADS : threads;
    if (parts > nq) parts = nq ? (int)nq : 1;
    memset(fv.buf, 0, (size_t)nq);
    for (int p = 0; p < parts; p++) {
        mih_job_t *job = &jobs[p];
        *job = (mih_job_t){.queries = qv.buf, .codes = cv.buf, .allowed = have_allowed ? av.buf : NULL,
                           .nbytes = nbytes, .q0 = nq * p / parts, .q1 = nq * (p + 1) / parts, .n_delta = n_delta,
                           .n = n, .n_built = n_built, .k = (int)k, .m = (int)m, .widths = widths, .starts = starts,
                           .offset_base = offset_base, .member_base = member_base, .cur_of_build = cur_of_build,
                           .delta = delta, .offsets = offsets, .members = members, .budget = budget,
                           .step_cost = step_cost, .dist = dv.buf, .found = ov.buf, .fell_back = fv.buf,
                           .inline_codes = icv.buf,
                           .candidates = 0, .n_members = n_members};
    }
    int64_t candidates = 0;
    Py_BEGIN_ALLOW_THREADS
    run_parallel(run_mih_job, jobs, sizeof jobs[0], parts);
    for (int p = 0; p < parts; p++) candidates += jobs[p].candidates;
    Py_END_ALLOW_THREADS
    result = PyLong_FromLongLong(candidates);
done:
    PyBuffer_Release(&qv);
    PyBuffer_Release(&cv);
    PyBuffer_Release(&wv);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&ofv);
    PyBuffer_Release(&obv);
    PyBuffer_Release(&mv);
    PyBuffer_Release(&mbv);
    PyBuffer_Release(&cbv);
    PyBuffer_Release(&dlv);
    if (have_allowed && av.obj) PyBuffer_Release(&av);
    PyBuffer_Release(&dv);
    PyBuffer_Release(&ov);
    PyBuffer_Release(&fv);
    PyBuffer_Release(&icv);
    return result;
}

/* ---- Inverted-file probe (lookalike/partial/index.py: the lists are faiss's, read in place) ------------------ */

/* Whether lists[p] is the first occurrence of its list among lists[0 .. p]. */
static inline int first_of(const int64_t *lists, Py_ssize_t p)
{
    for (Py_ssize_t r = 0; r < p; r++)
        if (lists[r] == lists[p]) return 0;
    return 1;
}

/* One thread's share of an inverted-file probe: the lists [l0, l1), each against the queries that probe it
 * (members[start[l] .. start[l + 1]]), into its own result arrays (nq * k). */
typedef struct {
    const uint8_t *queries;
    const int64_t *start, *members, *sizes;
    const uint64_t *code_at, *id_at; /* per list: the address of its codes and of its ids */
    Py_ssize_t nbytes, l0, l1, tile, widest;
    int k;
    scan_fn scan;
    int32_t *dist;
    int64_t *found;
    int failed;
} ivf_job_t;

/* Each list is read once, tile by tile, against all the queries that probe it, gathered into one block. */
static void *run_ivf_job(void *arg)
{
    ivf_job_t *job = arg;
    Py_ssize_t nbytes = job->nbytes, k = job->k;
    uint8_t *block = malloc((size_t)(job->widest * nbytes));
    best_t *best = malloc(sizeof(best_t) * (size_t)job->widest);
    if (!block || !best) {
        job->failed = 1;
        free(block);
        free(best);
        return NULL;
    }
    for (Py_ssize_t list = job->l0; list < job->l1; list++) {
        int64_t g0 = job->start[list], g1 = job->start[list + 1];
        if (g0 == g1) continue;
        int ng = (int)(g1 - g0);
        for (int i = 0; i < ng; i++) {
            int64_t q = job->members[g0 + i];
            memcpy(block + (Py_ssize_t)i * nbytes, job->queries + q * nbytes, (size_t)nbytes);
            best[i].dist = job->dist + q * k;
            best[i].rows = job->found + q * k;
            best[i].bound = best[i].dist[k - 1];
        }
        const uint8_t *codes = (const uint8_t *)(uintptr_t)job->code_at[list];
        const int64_t *rows = (const int64_t *)(uintptr_t)job->id_at[list];
        Py_ssize_t n = job->sizes[list];
        for (Py_ssize_t j0 = 0; j0 < n; j0 += job->tile) {
            Py_ssize_t j1 = j0 + job->tile < n ? j0 + job->tile : n;
            job->scan(block, codes + j0 * nbytes, nbytes, rows, j0, j1, best, ng, (int)k);
        }
    }
    free(block);
    free(best);
    return NULL;
}

PyDoc_STRVAR(ivf_doc,
"ivf_topk(queries, lists, code_at, id_at, sizes, nbytes, k, out_distances, out_ids, threads, tile_rows=0)\n\n"
"The k nearest codes of each query among the inverted lists it probes: lists (int64, nq*nprobe) names them (-1:\n"
"none; a repeat is taken once); list l holds sizes[l] codes of nbytes at address code_at[l] and their int64 ids\n"
"at id_at[l] (uint64 addresses, e.g. of faiss's ArrayInvertedLists, which must not change during the call).\n"
"Writes out_distances (int32, nq*k) ascending and out_ids (int64, nq*k), padded with INT32_MAX and -1; equal\n"
"distances keep the code met first, the lists being read in ascending number and each list in order. Each list\n"
"is read once for all the queries that probe it; up to `threads` threads split the lists by the work in them\n"
"(their lists merged after). The GIL is released while they run.");

static PyObject *ivf_topk(PyObject *self, PyObject *args)
{
    Py_buffer qv = {0}, lv = {0}, cv = {0}, iv = {0}, sv = {0}, dv = {0}, ov = {0};
    Py_ssize_t nbytes, k, tile_rows = 0;
    int threads, failed = 0, parts = 1;
    PyObject *result = NULL;
    ivf_job_t jobs[MAX_THREADS];
    int32_t *dists[MAX_THREADS] = {0}; /* each share's results when there are several: merged, then freed */
    int64_t *founds[MAX_THREADS] = {0};
    int64_t *start = NULL, *members = NULL;
    memset(jobs, 0, sizeof jobs);
    (void)self;
    if (!PyArg_ParseTuple(args, "y*y*y*y*y*nnw*w*i|n", &qv, &lv, &cv, &iv, &sv, &nbytes, &k, &dv, &ov, &threads,
                          &tile_rows))
        return NULL;
    Py_ssize_t nq = nbytes > 0 ? qv.len / nbytes : 0, nlist = sv.len / 8;
    if (nbytes < 1 || k < 1 || k > INT32_MAX / 2 || qv.len % nbytes || (nq && lv.len % (8 * nq)) ||
        (!nq && lv.len) || cv.len != 8 * nlist || iv.len != 8 * nlist || sv.len % 8 || dv.len != 4 * nq * k ||
        ov.len != 8 * nq * k) {
        PyErr_SetString(PyExc_ValueError, "ivf_topk: inconsistent buffer sizes");
        goto done;
    }
    if (nq > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "ivf_topk: too many queries for one call");
        goto done;
    }
    Py_ssize_t nprobe = nq ? lv.len / (8 * nq) : 0;
    const int64_t *lists = lv.buf, *sizes = sv.buf;
    const uint64_t *code_at = cv.buf, *id_at = iv.buf;
    for (Py_ssize_t i = 0; i < nq * nprobe; i++)
        if (lists[i] < -1 || lists[i] >= nlist) {
            PyErr_SetString(PyExc_ValueError, "ivf_topk: a list number is outside the lists");
            goto done;
        }
    for (Py_ssize_t l = 0; l < nlist; l++)
        if (sizes[l] < 0 || (sizes[l] && (!code_at[l] || !id_at[l]))) {
            PyErr_SetString(PyExc_ValueError, "ivf_topk: a list has a negative size or no address");
            goto done;
        }
    if (tile_rows <= 0) tile_rows = TILE_BYTES / nbytes > 64 ? TILE_BYTES / nbytes : 64;
    /* the queries of each list, in query order (a counting sort of the (list, query) pairs) */
    start = calloc((size_t)nlist + 1, sizeof(int64_t));
    members = malloc(sizeof(int64_t) * (size_t)(nq * nprobe > 0 ? nq * nprobe : 1));
    if (!start || !members) {
        PyErr_NoMemory();
        goto done;
    }
#define TAKEN(q, p) (lists[(q) * nprobe + (p)] >= 0 && sizes[lists[(q) * nprobe + (p)]] > 0 && first_of(lists + (q) * nprobe, p))
    for (Py_ssize_t q = 0; q < nq; q++)
        for (Py_ssize_t p = 0; p < nprobe; p++)
            if (TAKEN(q, p)) start[lists[q * nprobe + p] + 1]++;
    Py_ssize_t widest = 1;
    double total = 0;
    for (Py_ssize_t l = 0; l < nlist; l++) {
        if (start[l + 1] > widest) widest = start[l + 1];
        total += (double)start[l + 1] * (double)sizes[l];
        start[l + 1] += start[l];
    }
    for (Py_ssize_t l = nlist; l > 0; l--) start[l] = start[l - 1]; /* shift: placement counts up from start[l] */
    start[0] = 0;
    for (Py_ssize_t q = 0; q < nq; q++)
        for (Py_ssize_t p = 0; p < nprobe; p++)
            if (TAKEN(q, p)) members[start[lists[q * nprobe + p] + 1]++] = q;
#undef TAKEN
    /* shares of about equal work (query x code pairs), by consecutive list ranges */
    if (threads > 1 && total >= MIN_THREADED_PAIRS) parts = threads > MAX_THREADS ? MAX_THREADS : threads;
    Py_ssize_t l = 0;
    double work = 0;
    for (int p = 0; p < parts; p++) {
        ivf_job_t *job = &jobs[p];
        *job = (ivf_job_t){.queries = qv.buf, .start = start, .members = members, .sizes = sizes,
                           .code_at = code_at, .id_at = id_at, .nbytes = nbytes, .l0 = l, .tile = tile_rows,
                           .widest = widest, .k = (int)k, .scan = pick(nbytes)};
        double goal = total * (p + 1) / parts;
        while (l < nlist && (p == parts - 1 || work < goal)) {
            work += (double)(start[l + 1] - start[l]) * (double)sizes[l];
            l++;
        }
        job->l1 = l;
        if (parts == 1) {
            job->dist = dv.buf;
            job->found = ov.buf;
        } else {
            job->dist = dists[p] = PyMem_RawMalloc(sizeof(int32_t) * (size_t)(nq * k));
            job->found = founds[p] = PyMem_RawMalloc(sizeof(int64_t) * (size_t)(nq * k));
            if (!job->dist || !job->found) {
                PyErr_NoMemory();
                goto done;
            }
        }
        for (Py_ssize_t i = 0; i < nq * k; i++) {
            job->dist[i] = PAD_DISTANCE;
            job->found[i] = -1;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    run_parallel(run_ivf_job, jobs, sizeof jobs[0], parts);
    for (int p = 0; p < parts; p++) failed |= jobs[p].failed;
    if (!failed && parts > 1) merge_parts(dists, founds, parts, nq, k, dv.buf, ov.buf);
    Py_END_ALLOW_THREADS
    if (failed) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    for (int p = 0; p < MAX_THREADS; p++) {
        PyMem_RawFree(dists[p]);
        PyMem_RawFree(founds[p]);
    }
    free(start);
    free(members);
    PyBuffer_Release(&qv);
    PyBuffer_Release(&lv);
    PyBuffer_Release(&cv);
    PyBuffer_Release(&iv);
    PyBuffer_Release(&sv);
    PyBuffer_Release(&dv);
    PyBuffer_Release(&ov);
    return result;
}

static int cpu_popcnt = 0, cpu_avx2 = 0; /* what the CPU has; use_* may be lowered by force() */

static PyObject *force(PyObject *self, PyObject *arg)
{
    (void)self;
    const char *name = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    if (!name) {
        PyErr_SetString(PyExc_TypeError, "force() takes a flavour name");
        return NULL;
    }
    int avx2 = strcmp(name, "avx2") == 0, popcnt = avx2 || strcmp(name, "popcnt") == 0;
    if (!popcnt && strcmp(name, "portable") != 0) {
        PyErr_Format(PyExc_ValueError, "unknown flavour %R: 'avx2', 'popcnt' or 'portable'", arg);
        return NULL;
    }
    if ((avx2 && !cpu_avx2) || (popcnt && !cpu_popcnt)) {
        PyErr_Format(PyExc_ValueError, "this CPU cannot run the %R scans", arg);
        return NULL;
    }
    use_avx2 = avx2;
    use_popcnt = popcnt;
    Py_RETURN_NONE;
}

static PyObject *flavours(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    if (cpu_avx2) return Py_BuildValue("(sss)", "avx2", "popcnt", "portable");
    if (cpu_popcnt) return Py_BuildValue("(ss)", "popcnt", "portable");
    return Py_BuildValue("(s)", "portable");
}

static PyMethodDef methods[] = {
    {"mih_search", mih_search, METH_VARARGS, mih_doc},
    {"force", force, METH_O, "Run the given flavour's scans from now on (tests run each one the CPU can)."},
    {"flavours", flavours, METH_NOARGS, "The flavours this CPU can run, fastest first."},
    {"topk", topk, METH_VARARGS, topk_doc},
    {"ivf_topk", ivf_topk, METH_VARARGS, ivf_doc},
    {"flavour", flavour, METH_NOARGS, "Which scans run: 'avx2' (64-512-bit codes by AVX2, other widths by POPCNT), 'popcnt' or 'portable'."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "lookalike.index._hamming",
    "Compiled exact Hamming top-k (see lookalike/index/_hamming.c).", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__hamming(void)
{
#ifdef HAVE_X86_COPIES
    __builtin_cpu_init();
    cpu_popcnt = use_popcnt = __builtin_cpu_supports("popcnt");
    cpu_avx2 = use_avx2 = use_popcnt && __builtin_cpu_supports("avx2");
#endif
    return PyModule_Create(&module);
}
