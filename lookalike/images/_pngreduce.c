/* PNG rows to a box-reduced image, one row at a time (lookalike/images/_png.py drives it).

   The Python side inflates the IDAT stream in pieces and hands each piece to Reducer.feed(), which splits it into
   scanlines, undoes the PNG filter of each (None, Sub, Up, Average, Paeth; PNG spec, section 9) and adds the row
   into running sums of factor x factor blocks. Each finished band of `factor` rows becomes one output row, the mean
   of each block rounded to nearest (the blocks at the right and bottom edges average the pixels they have, as
   Pillow's Image.reduce does; with alpha, the colour is the alpha-weighted mean). So a 5120x2880 RGB photo reduced by 8 is never held at full size: two rows of
   pixels, one row of sums and the 640x360 result.

   Only 8-bit, non-interlaced PNGs with 1-4 channels (grey, grey+alpha, RGB, RGBA) come here; everything else is
   Pillow's. feed() releases the GIL so that inflating the next piece overlaps with it. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    PyObject_HEAD
    Py_ssize_t width, height, channels, factor;
    Py_ssize_t stride;  /* bytes of pixels in one row */
    Py_ssize_t out_w, out_h;
    uint8_t *prev, *cur; /* the previous and the current row, unfiltered */
    uint8_t *pending;   /* a row split between two pieces: filter byte + pixels */
    Py_ssize_t have;    /* bytes of `pending` filled */
    uint32_t *sums;     /* out_w * channels */
    uint8_t *out;       /* out_h * out_w * channels */
    Py_ssize_t row;     /* rows done */
    int bad_filter;     /* a filter type above 4 was seen */
    int busy;
} Reducer;

static void reducer_free(Reducer *self) {
    free(self->prev);
    free(self->cur);
    free(self->pending);
    free(self->sums);
    free(self->out);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int reducer_init(Reducer *self, PyObject *args, PyObject *kwds) {
    static char *names[] = {"width", "height", "channels", "factor", NULL};
    Py_ssize_t w, h, c, f;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnnn", names, &w, &h, &c, &f))
        return -1;
    if (w < 1 || h < 1 || c < 1 || c > 4 || f < 1 || f > 64 || w > (1 << 24) || h > (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "width and height must be 1..2**24, channels 1..4 and factor 1..64");
        return -1;
    }
    if (self->prev != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Reducer is initialised once");
        return -1;
    }
    self->width = w;
    self->height = h;
    self->channels = c;
    self->factor = f;
    self->stride = w * c;
    self->out_w = (w + f - 1) / f;
    self->out_h = (h + f - 1) / f;
    self->prev = calloc((size_t)self->stride, 1);
    self->cur = calloc((size_t)self->stride, 1);
    self->pending = malloc((size_t)self->stride + 1);
    self->sums = calloc((size_t)(self->out_w * c), sizeof(uint32_t));
    self->out = malloc((size_t)(self->out_w * self->out_h * c));
    if (!self->prev || !self->cur || !self->pending || !self->sums || !self->out) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static inline int paeth(int a, int b, int c) {
    int p = b - c, q = a - c;
    int pa = abs(p), pb = abs(q), pc = abs(p + q);
    return (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
}

/* Undo one row's filter: raw (stride bytes, after the filter byte) and prev into cur. */
static int unfilter(int type, const uint8_t *raw, const uint8_t *prev, uint8_t *cur, Py_ssize_t n, Py_ssize_t bpp) {
    Py_ssize_t i;
    switch (type) {
    case 0:
        memcpy(cur, raw, (size_t)n);
        return 0;
    case 1:
        memcpy(cur, raw, (size_t)bpp);
        for (i = bpp; i < n; i++)
            cur[i] = (uint8_t)(raw[i] + cur[i - bpp]);
        return 0;
    case 2:
        for (i = 0; i < n; i++)
            cur[i] = (uint8_t)(raw[i] + prev[i]);
        return 0;
    case 3:
        for (i = 0; i < bpp; i++)
            cur[i] = (uint8_t)(raw[i] + (prev[i] >> 1));
        for (; i < n; i++)
            cur[i] = (uint8_t)(raw[i] + ((cur[i - bpp] + prev[i]) >> 1));
        return 0;
    case 4:
        for (i = 0; i < bpp; i++)
            cur[i] = (uint8_t)(raw[i] + prev[i]);
        for (; i < n; i++)
            cur[i] = (uint8_t)(raw[i] + paeth(cur[i - bpp], prev[i], prev[i - bpp]));
        return 0;
    default:
        return -1;
    }
}

/* Add one unfiltered row into the block sums, for a channel count known at compile time. With alpha (2 and 4
   channels) the colour sums are weighted by alpha, so that a block's colour is that of its visible pixels: the
   premultiplied mean, as Pillow's reduce and libvips take it, and what compositing before reducing would give. */
#define ACCUMULATE(C, ALPHA)                                                                                       \
    static void accumulate##C(const uint8_t *row, uint32_t *sums, Py_ssize_t width, Py_ssize_t f) {                \
        Py_ssize_t x = 0, ox = 0;                                                                                   \
        while (x < width) {                                                                                         \
            uint32_t s[C] = {0};                                                                                    \
            Py_ssize_t end = x + f < width ? x + f : width;                                                         \
            for (; x < end; x++) {                                                                                  \
                const uint8_t *px = row + x * C;                                                                    \
                uint32_t a = ALPHA ? px[C - 1] : 1;                                                                 \
                for (int k = 0; k < C - ALPHA; k++)                                                                 \
                    s[k] += px[k] * a;                                                                              \
                if (ALPHA)                                                                                          \
                    s[C - 1] += a;                                                                                  \
            }                                                                                                       \
            for (int k = 0; k < C; k++)                                                                             \
                sums[ox * C + k] += s[k];                                                                           \
            ox++;                                                                                                   \
        }                                                                                                           \
    }
ACCUMULATE(1, 0)
ACCUMULATE(2, 1)
ACCUMULATE(3, 0)
ACCUMULATE(4, 1)

static void emit(Reducer *self) {
    Py_ssize_t oy = self->row / self->factor, c = self->channels, f = self->factor;
    int alpha = c == 2 || c == 4;
    uint32_t rows = (uint32_t)(self->row - oy * f + 1);
    uint8_t *dst = self->out + oy * self->out_w * c;
    const uint32_t *sum = self->sums;
    for (Py_ssize_t ox = 0; ox < self->out_w; ox++, sum += c, dst += c) {
        Py_ssize_t cols = self->width - ox * f < f ? self->width - ox * f : f;
        uint32_t count = rows * (uint32_t)cols;
        uint32_t weight = alpha ? sum[c - 1] : count; /* colour sums are over alpha (or 1) per pixel */
        for (Py_ssize_t k = 0; k < c - alpha; k++)
            dst[k] = weight ? (uint8_t)((sum[k] + weight / 2) / weight) : 0;
        if (alpha)
            dst[c - 1] = (uint8_t)((weight + count / 2) / count);
    }
    memset(self->sums, 0, (size_t)(self->out_w * c) * sizeof(uint32_t));
}

/* One whole row (filter byte + stride bytes). Returns -1 on a bad filter type. */
static int take_row(Reducer *self, const uint8_t *line) {
    uint8_t *swap;
    if (unfilter(line[0], line + 1, self->prev, self->cur, self->stride, self->channels) < 0)
        return -1;
    switch (self->channels) {
    case 1: accumulate1(self->cur, self->sums, self->width, self->factor); break;
    case 2: accumulate2(self->cur, self->sums, self->width, self->factor); break;
    case 3: accumulate3(self->cur, self->sums, self->width, self->factor); break;
    default: accumulate4(self->cur, self->sums, self->width, self->factor); break;
    }
    if ((self->row + 1) % self->factor == 0 || self->row + 1 == self->height)
        emit(self);
    self->row++;
    swap = self->prev;
    self->prev = self->cur;
    self->cur = swap;
    return 0;
}

/* Consume n bytes; bytes past the last row are ignored. Returns -1 on a bad filter type. */
static int consume(Reducer *self, const uint8_t *data, Py_ssize_t n) {
    Py_ssize_t line = self->stride + 1;
    while (n > 0 && self->row < self->height) {
        if (self->have == 0 && n >= line) {  /* a whole row inside the piece: no copy */
            if (take_row(self, data) < 0)
                return -1;
            data += line;
            n -= line;
            continue;
        }
        Py_ssize_t take = line - self->have < n ? line - self->have : n;
        memcpy(self->pending + self->have, data, (size_t)take);
        self->have += take;
        data += take;
        n -= take;
        if (self->have == line) {
            self->have = 0;
            if (take_row(self, self->pending) < 0)
                return -1;
        }
    }
    return 0;
}

static PyObject *reducer_feed(Reducer *self, PyObject *arg) {
    Py_buffer view;
    int status;
    if (self->prev == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the Reducer was not initialised");
        return NULL;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Reducer.feed is already running in another thread");
        return NULL;
    }
    if (self->bad_filter) {
        PyErr_SetString(PyExc_ValueError, "the PNG data has a row with an unknown filter type");
        return NULL;
    }
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    self->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    status = consume(self, (const uint8_t *)view.buf, view.len);
    Py_END_ALLOW_THREADS
    self->busy = 0;
    PyBuffer_Release(&view);
    if (status < 0) {
        self->bad_filter = 1;
        PyErr_SetString(PyExc_ValueError, "the PNG data has a row with an unknown filter type");
        return NULL;
    }
    return PyBool_FromLong(self->row == self->height);
}

static PyObject *reducer_result(Reducer *self, PyObject *Py_UNUSED(ignored)) {
    if (self->prev == NULL || self->row < self->height || self->bad_filter) {
        PyErr_Format(PyExc_ValueError, "the PNG data ends after %zd of %zd rows", self->row, self->height);
        return NULL;
    }
    return PyBytes_FromStringAndSize((const char *)self->out, self->out_w * self->out_h * self->channels);
}

static PyObject *reducer_get_rows(Reducer *self, void *Py_UNUSED(closure)) { return PyLong_FromSsize_t(self->row); }

static PyObject *reducer_get_size(Reducer *self, void *Py_UNUSED(closure)) {
    return Py_BuildValue("(nn)", self->out_w, self->out_h);
}

static PyMethodDef reducer_methods[] = {
    {"feed", (PyCFunction)reducer_feed, METH_O,
     "feed(data) -> bool: consume inflated scanline bytes (any split); True once every row is in. Releases the GIL."},
    {"result", (PyCFunction)reducer_result, METH_NOARGS,
     "result() -> bytes: the reduced image, rows of out_w * channels bytes; ValueError if rows are missing."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef reducer_getset[] = {
    {"rows", (getter)reducer_get_rows, NULL, "rows consumed so far", NULL},
    {"size", (getter)reducer_get_size, NULL, "(width, height) of the result", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject ReducerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "lookalike.images._pngreduce.Reducer",
    .tp_doc = "Reducer(width, height, channels, factor): PNG scanlines (8-bit, non-interlaced) to a box-reduced image",
    .tp_basicsize = sizeof(Reducer),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)reducer_init,
    .tp_dealloc = (destructor)reducer_free,
    .tp_methods = reducer_methods,
    .tp_getset = reducer_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_pngreduce", "PNG scanlines to a box-reduced image (see _png.py).", -1, NULL,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__pngreduce(void) {
    PyObject *m;
    if (PyType_Ready(&ReducerType) < 0)
        return NULL;
    m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    Py_INCREF(&ReducerType);
    if (PyModule_AddObject(m, "Reducer", (PyObject *)&ReducerType) < 0) {
        Py_DECREF(&ReducerType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
