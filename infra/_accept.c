/* Compiled fast path of infra.event_schemas: an event acceptor driven by a field table.
 *
 * Acceptor(fields, when) builds a callable that returns True when a dict event passes every
 * field test and False otherwise. It is the compiled twin of the acceptor that
 * infra/event_schemas.py generates as Python source from SCHEMAS, and it is built from the same
 * table (event_schemas._acceptor_table), so the schema lives in one place. False never means
 * invalid, only "not accepted here": the caller then runs the reference checks, which give the
 * verdict and the reason. tests/test_event_schemas.py checks that both acceptors return the same
 * answer on arbitrary JSON-like input.
 *
 * Each entry of ``fields`` is (name, required, kind, a, b):
 *   K_NUM    exact int or float with a <= v <= b (a, b floats; ints compare exactly, like Python)
 *   K_STR    exact str, not empty and not all whitespace (str.isspace)
 *   K_ENUM   exact str contained in the frozenset a
 *   K_VECTOR exact list of exact, finite floats
 *   K_TS     exact str that the callable a (datetime.fromisoformat) parses to an aware datetime;
 *            a ValueError means "not accepted"
 *   K_EQ     v == a
 *   K_CALL   the callable a returns None for v (any other reference check)
 * A required field that is missing means "not accepted"; an optional field is tested only when
 * present and not None. ``when`` is None or (field, value, other): when event[field] == value,
 * event.get(other) must not be None (a CLOSED position update needs its realized PnL).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <stddef.h>

enum { K_NUM = 1, K_STR = 2, K_ENUM = 3, K_VECTOR = 4, K_TS = 5, K_EQ = 6, K_CALL = 7 };

typedef struct {
    PyObject *name; /* str, interned */
    int required;
    int kind;
    double lo, hi;
    PyObject *a; /* lo as a float (K_NUM), the frozenset, callable or value */
    PyObject *b; /* hi as a float (K_NUM) */
} Field;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    Py_ssize_t n;
    Field *fields;
    PyObject *when_field, *when_value, *when_other; /* NULL when there is no condition */
    PyObject *table;                                 /* the constructor's arguments, kept alive */
} Acceptor;

static PyObject *s_tzinfo;

/* 1 when v is accepted, 0 when not, -1 with an exception set. */
static int
check_field(const Field *f, PyObject *v)
{
    switch (f->kind) {
    case K_NUM:
        if (PyFloat_CheckExact(v)) {
            double x = PyFloat_AS_DOUBLE(v);
            return f->lo <= x && x <= f->hi; /* false for NaN */
        }
        if (PyLong_CheckExact(v)) { /* exact comparison of an int with a float, as in Python */
            int r = PyObject_RichCompareBool(v, f->a, Py_GE);
            if (r <= 0)
                return r;
            return PyObject_RichCompareBool(v, f->b, Py_LE);
        }
        return 0;
    case K_STR: {
        if (!PyUnicode_CheckExact(v))
            return 0;
        Py_ssize_t len = PyUnicode_GET_LENGTH(v);
        int kind = PyUnicode_KIND(v);
        const void *data = PyUnicode_DATA(v);
        for (Py_ssize_t i = 0; i < len; i++) { /* not all whitespace (and not empty) */
            if (!Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, i)))
                return 1;
        }
        return 0;
    }
    case K_ENUM:
        if (!PyUnicode_CheckExact(v))
            return 0;
        return PySet_Contains(f->a, v);
    case K_VECTOR: {
        if (!PyList_CheckExact(v))
            return 0;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(v); i++) {
            PyObject *x = PyList_GET_ITEM(v, i);
            if (!PyFloat_CheckExact(x))
                return 0;
            double d = PyFloat_AS_DOUBLE(x);
            if (!(-DBL_MAX <= d && d <= DBL_MAX))
                return 0;
        }
        return 1;
    }
    case K_TS: {
        if (!PyUnicode_CheckExact(v))
            return 0;
        PyObject *parsed = PyObject_CallOneArg(f->a, v);
        if (parsed == NULL) {
            if (PyErr_ExceptionMatches(PyExc_ValueError)) {
                PyErr_Clear();
                return 0;
            }
            return -1;
        }
        PyObject *tz = PyObject_GetAttr(parsed, s_tzinfo);
        Py_DECREF(parsed);
        if (tz == NULL)
            return -1;
        int aware = tz != Py_None;
        Py_DECREF(tz);
        return aware;
    }
    case K_EQ:
        return PyObject_RichCompareBool(v, f->a, Py_EQ);
    case K_CALL: {
        PyObject *r = PyObject_CallOneArg(f->a, v);
        if (r == NULL)
            return -1;
        int ok = r == Py_None;
        Py_DECREF(r);
        return ok;
    }
    default:
        PyErr_Format(PyExc_SystemError, "acceptor: unknown field kind %d", f->kind);
        return -1;
    }
}

static PyObject *
acceptor_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Acceptor *self = (Acceptor *)callable;
    if (PyVectorcall_NARGS(nargsf) != 1 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames) != 0)) {
        PyErr_SetString(PyExc_TypeError, "an acceptor takes exactly one positional argument (the event)");
        return NULL;
    }
    PyObject *e = args[0];
    if (!PyDict_CheckExact(e))
        Py_RETURN_FALSE;
    for (Py_ssize_t i = 0; i < self->n; i++) {
        const Field *f = &self->fields[i];
        PyObject *v = PyDict_GetItemWithError(e, f->name); /* borrowed */
        if (v == NULL) {
            if (PyErr_Occurred())
                return NULL;
            if (f->required)
                Py_RETURN_FALSE;
            continue;
        }
        if (v == Py_None && !f->required)
            continue;
        Py_INCREF(v); /* a K_CALL check runs Python code, which could drop the dict's reference */
        int ok = check_field(f, v);
        Py_DECREF(v);
        if (ok < 0)
            return NULL;
        if (!ok)
            Py_RETURN_FALSE;
    }
    if (self->when_field != NULL) {
        PyObject *v = PyDict_GetItemWithError(e, self->when_field);
        if (v == NULL && PyErr_Occurred())
            return NULL;
        if (v != NULL) {
            Py_INCREF(v);
            int eq = PyObject_RichCompareBool(v, self->when_value, Py_EQ);
            Py_DECREF(v);
            if (eq < 0)
                return NULL;
            if (eq) {
                PyObject *other = PyDict_GetItemWithError(e, self->when_other);
                if (other == NULL && PyErr_Occurred())
                    return NULL;
                if (other == NULL || other == Py_None)
                    Py_RETURN_FALSE;
            }
        }
    }
    Py_RETURN_TRUE;
}

static void
acceptor_dealloc(Acceptor *self)
{
    PyObject_GC_UnTrack(self);
    PyMem_Free(self->fields); /* the objects it points to are owned by self->table */
    Py_CLEAR(self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
acceptor_traverse(Acceptor *self, visitproc visit, void *arg)
{
    Py_VISIT(self->table);
    return 0;
}

static int
acceptor_clear(Acceptor *self)
{
    self->n = 0;
    self->when_field = self->when_value = self->when_other = NULL;
    Py_CLEAR(self->table);
    return 0;
}

static PyObject *
acceptor_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fields", "when", NULL};
    PyObject *fields, *when = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!|O:Acceptor", kwlist, &PyTuple_Type, &fields, &when))
        return NULL;
    if (when != Py_None && !(PyTuple_Check(when) && PyTuple_GET_SIZE(when) == 3)) {
        PyErr_SetString(PyExc_TypeError, "Acceptor: 'when' must be None or a (field, value, other) tuple");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(fields);
    Acceptor *self = (Acceptor *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->vectorcall = acceptor_vectorcall;
    self->table = PyTuple_Pack(2, fields, when);
    self->fields = PyMem_Calloc(n > 0 ? (size_t)n : 1, sizeof(Field));
    if (self->table == NULL || self->fields == NULL) {
        Py_DECREF(self);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *row = PyTuple_GET_ITEM(fields, i);
        Field *f = &self->fields[i];
        PyObject *name, *a, *b;
        if (!PyTuple_Check(row) ||
            !PyArg_ParseTuple(row, "UpiOO:Acceptor field", &name, &f->required, &f->kind, &a, &b)) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "Acceptor: field %zd must be a (name, required, kind, a, b) tuple", i);
            Py_DECREF(self);
            return NULL;
        }
        f->name = name;
        f->a = a;
        f->b = b;
        if (f->kind == K_NUM) {
            if (!PyFloat_CheckExact(a) || !PyFloat_CheckExact(b)) {
                PyErr_Format(PyExc_TypeError, "Acceptor: the bounds of field %R must be floats", name);
                Py_DECREF(self);
                return NULL;
            }
            f->lo = PyFloat_AS_DOUBLE(a);
            f->hi = PyFloat_AS_DOUBLE(b);
        } else if (f->kind == K_ENUM && !PyFrozenSet_CheckExact(a)) {
            PyErr_Format(PyExc_TypeError, "Acceptor: the values of field %R must be a frozenset", name);
            Py_DECREF(self);
            return NULL;
        } else if ((f->kind == K_TS || f->kind == K_CALL) && !PyCallable_Check(a)) {
            PyErr_Format(PyExc_TypeError, "Acceptor: the check of field %R must be callable", name);
            Py_DECREF(self);
            return NULL;
        } else if (f->kind < K_NUM || f->kind > K_CALL) {
            PyErr_Format(PyExc_ValueError, "Acceptor: field %R has unknown kind %d", name, f->kind);
            Py_DECREF(self);
            return NULL;
        }
        self->n = i + 1;
    }
    if (when != Py_None) {
        self->when_field = PyTuple_GET_ITEM(when, 0);
        self->when_value = PyTuple_GET_ITEM(when, 1);
        self->when_other = PyTuple_GET_ITEM(when, 2);
    }
    return (PyObject *)self;
}

static PyTypeObject AcceptorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "infra._accept.Acceptor",
    .tp_doc = PyDoc_STR("Acceptor(fields, when=None): a compiled event acceptor (see infra.event_schemas)."),
    .tp_basicsize = sizeof(Acceptor),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = acceptor_new,
    .tp_dealloc = (destructor)acceptor_dealloc,
    .tp_traverse = (traverseproc)acceptor_traverse,
    .tp_clear = (inquiry)acceptor_clear,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Acceptor, vectorcall),
};

static struct PyModuleDef acceptmodule = {
    PyModuleDef_HEAD_INIT,
    .m_name = "infra._accept",
    .m_doc = "Compiled fast path of infra.event_schemas (an optional build; see docs/eventbus.md).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__accept(void)
{
    s_tzinfo = PyUnicode_InternFromString("tzinfo");
    if (s_tzinfo == NULL || PyType_Ready(&AcceptorType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&acceptmodule);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Acceptor", (PyObject *)&AcceptorType) < 0 ||
        PyModule_AddIntConstant(m, "K_NUM", K_NUM) < 0 || PyModule_AddIntConstant(m, "K_STR", K_STR) < 0 ||
        PyModule_AddIntConstant(m, "K_ENUM", K_ENUM) < 0 || PyModule_AddIntConstant(m, "K_VECTOR", K_VECTOR) < 0 ||
        PyModule_AddIntConstant(m, "K_TS", K_TS) < 0 || PyModule_AddIntConstant(m, "K_EQ", K_EQ) < 0 ||
        PyModule_AddIntConstant(m, "K_CALL", K_CALL) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
