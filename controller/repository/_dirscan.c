/* One directory's listing, with each entry's lstat, whether it may have extended
 * attributes, and the content of its small regular files: every system call of it made
 * with the GIL released once, not once a call.
 *
 * Why native: a backup of many small files spent a third of its walk in the system calls
 * of each file (lstat, llistxattr, open, read, fstat, close), each one a Python call that
 * releases and retakes the GIL. Made from Python in another thread, they waited for the
 * GIL after every call (the convoy effect); made here, a whole directory is one call, which
 * a thread of its own runs ahead of the walk (controller/repository/scanner.py).
 *
 * Only the common case is answered here: a content is given only when the file was read
 * whole and its size, mtime and ctime did not change from the lstat to the end of the
 * read; anything else (a read error, a change, a file past the budget) is left to the
 * Python code, which reads, retries and reports as it always did.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structseq.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <unistd.h>

static PyObject *stat_result_type; /* os.stat_result */

typedef struct {
    size_t name;        /* offset of its NUL-terminated name in the names buffer */
    int error;          /* lstat's errno, 0 when `info` holds the lstat */
    struct stat info;
    int maybe_xattrs;   /* llistxattr did not answer "none" */
    Py_ssize_t content; /* offset in the content buffer, or -1 when not read */
} Entry;

typedef struct {
    Entry *entries;
    size_t count, capacity;
    char *names;
    size_t names_used, names_capacity;
    char *content;
    size_t content_used, content_capacity;
} Listing;

static void listing_free(Listing *listing) {
    free(listing->entries);
    free(listing->names);
    free(listing->content);
}

static int grow(void **buffer, size_t *capacity, size_t needed, size_t unit) {
    if (needed <= *capacity)
        return 0;
    size_t wanted = *capacity ? *capacity : 64;
    while (wanted < needed)
        wanted *= 2;
    void *grown = realloc(*buffer, wanted * unit);
    if (grown == NULL)
        return -1;
    *buffer = grown;
    *capacity = wanted;
    return 0;
}

static int same_times(const struct stat *a, const struct stat *b) {
    return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
           a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
           a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* Read the regular file `name` whole into the content buffer if its lstat still holds
 * after the read; its offset there, or -1. */
static Py_ssize_t read_unchanged(int directory, const char *name, const struct stat *walked, Listing *listing) {
    size_t size = (size_t)walked->st_size, start = listing->content_used;
    /* one byte more than expected, to see the end of the file in the same read */
    if (grow((void **)&listing->content, &listing->content_capacity, start + size + 1, 1) < 0)
        return -1;
    int fd = openat(directory, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -1;
    size_t done = 0;
    for (;;) {
        ssize_t got = read(fd, listing->content + start + done, size + 1 - done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        done += (size_t)got;
        if (done > size)
            break;
    }
    struct stat after;
    int stated = fstat(fd, &after);
    close(fd);
    if (stated < 0 || done != size || !S_ISREG(after.st_mode) || after.st_ino != walked->st_ino ||
        after.st_dev != walked->st_dev || !same_times(walked, &after))
        return -1;
    listing->content_used = start + size;
    return (Py_ssize_t)start;
}

/* Everything the listing needs from the file system; no Python object is touched, so it
 * runs without the GIL. Returns an errno, 0 on success. */
static int scan(const char *path, Py_ssize_t inline_limit, Py_ssize_t budget, Listing *listing) {
    int directory = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory < 0)
        return errno;
    DIR *stream = fdopendir(directory);
    if (stream == NULL) {
        int error = errno;
        close(directory);
        return error;
    }
    size_t path_length = strlen(path);
    char *full = NULL;
    size_t full_capacity = 0;
    int error = 0;
    for (;;) {
        errno = 0;
        struct dirent *found = readdir(stream);
        if (found == NULL) {
            error = errno;
            break;
        }
        const char *name = found->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        size_t name_length = strlen(name);
        if (grow((void **)&listing->entries, &listing->capacity, listing->count + 1, sizeof(Entry)) < 0 ||
            grow((void **)&listing->names, &listing->names_capacity, listing->names_used + name_length + 1, 1) < 0 ||
            grow((void **)&full, &full_capacity, path_length + name_length + 2, 1) < 0) {
            error = ENOMEM;
            break;
        }
        Entry *entry = &listing->entries[listing->count++];
        entry->name = listing->names_used;
        memcpy(listing->names + listing->names_used, name, name_length + 1);
        listing->names_used += name_length + 1;
        entry->content = -1;
        entry->maybe_xattrs = 1;
        entry->error = fstatat(directory, name, &entry->info, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
        if (entry->error)
            continue;
        memcpy(full, path, path_length);
        size_t at = path_length;
        if (at == 0 || full[at - 1] != '/')
            full[at++] = '/';
        memcpy(full + at, name, name_length + 1);
        entry->maybe_xattrs = llistxattr(full, NULL, 0) != 0;
        if (S_ISREG(entry->info.st_mode) && entry->info.st_size <= inline_limit &&
            (Py_ssize_t)listing->content_used + entry->info.st_size <= budget)
            entry->content = read_unchanged(directory, name, &entry->info, listing);
    }
    free(full);
    closedir(stream);
    return error;
}

static PyObject *number(long long value) { return PyLong_FromLongLong(value); }

static PyObject *seconds(const struct timespec *at) {
    return PyFloat_FromDouble((double)at->tv_sec + (double)at->tv_nsec * 1e-9);
}

static PyObject *nanoseconds(const struct timespec *at) {
    return PyLong_FromLongLong((long long)at->tv_sec * 1000000000LL + at->tv_nsec);
}

/* An os.stat_result with the fields os.lstat gives on Linux (the layout is checked at import). */
static PyObject *stat_result(const struct stat *st) {
    PyObject *result = PyStructSequence_New((PyTypeObject *)stat_result_type);
    if (result == NULL)
        return NULL;
    const struct timespec *times[3] = {&st->st_atim, &st->st_mtim, &st->st_ctim};
    PyObject *items[19] = {
        number(st->st_mode),   PyLong_FromUnsignedLongLong(st->st_ino), PyLong_FromUnsignedLongLong(st->st_dev),
        number((long long)st->st_nlink), number(st->st_uid), number(st->st_gid), number(st->st_size),
        number(times[0]->tv_sec), number(times[1]->tv_sec), number(times[2]->tv_sec),
        seconds(times[0]), seconds(times[1]), seconds(times[2]),
        nanoseconds(times[0]), nanoseconds(times[1]), nanoseconds(times[2]),
        number(st->st_blksize), number(st->st_blocks), PyLong_FromUnsignedLongLong(st->st_rdev),
    };
    int failed = 0;
    for (int i = 0; i < 19; i++) {
        if (items[i] == NULL)
            failed = 1;
        PyStructSequence_SET_ITEM(result, i, items[i] ? items[i] : Py_NewRef(Py_None));
    }
    if (failed) {
        Py_DECREF(result);
        return NULL;
    }
    return result;
}

/* (name, lstat or None, lstat's errno, may have xattrs, content or None) */
static PyObject *entry_tuple(const Listing *listing, const Entry *entry) {
    PyObject *name = PyUnicode_DecodeFSDefault(listing->names + entry->name);
    PyObject *info = entry->error ? Py_NewRef(Py_None) : stat_result(&entry->info);
    PyObject *content = entry->content < 0
                            ? Py_NewRef(Py_None)
                            : PyBytes_FromStringAndSize(listing->content + entry->content, entry->info.st_size);
    if (name == NULL || info == NULL || content == NULL) {
        Py_XDECREF(name);
        Py_XDECREF(info);
        Py_XDECREF(content);
        return NULL;
    }
    return Py_BuildValue("(NNiON)", name, info, entry->error, entry->maybe_xattrs ? Py_True : Py_False, content);
}

static PyObject *scan_directory(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *path;
    Py_ssize_t inline_limit, budget;
    if (!PyArg_ParseTuple(args, "O&nn:scan_directory", PyUnicode_FSConverter, &path, &inline_limit, &budget))
        return NULL;
    Listing listing = {0};
    int error;
    Py_BEGIN_ALLOW_THREADS
    error = scan(PyBytes_AS_STRING(path), inline_limit, budget, &listing);
    Py_END_ALLOW_THREADS
    if (error) {
        listing_free(&listing);
        errno = error;
        PyErr_SetFromErrnoWithFilenameObject(PyExc_OSError, path);
        Py_DECREF(path);
        return NULL;
    }
    Py_DECREF(path);
    PyObject *entries = PyList_New((Py_ssize_t)listing.count);
    for (size_t i = 0; entries != NULL && i < listing.count; i++) {
        PyObject *item = entry_tuple(&listing, &listing.entries[i]);
        if (item == NULL)
            Py_CLEAR(entries);
        else
            PyList_SET_ITEM(entries, (Py_ssize_t)i, item);
    }
    listing_free(&listing);
    return entries;
}

static PyMethodDef methods[] = {
    {"scan_directory", scan_directory, METH_VARARGS,
     "scan_directory(path, inline_limit, budget) -> [(name, lstat | None, errno, may_have_xattrs, content | None)]\n"
     "Regular files of at most inline_limit bytes are read, while their total stays within budget."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, .m_name = "_dirscan", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__dirscan(void) {
    PyObject *os = PyImport_ImportModule("os");
    if (os == NULL)
        return NULL;
    stat_result_type = PyObject_GetAttrString(os, "stat_result");
    Py_DECREF(os);
    if (stat_result_type == NULL)
        return NULL;
    PyObject *fields = PyObject_GetAttrString(stat_result_type, "n_fields");
    long count = fields ? PyLong_AsLong(fields) : -1;
    Py_XDECREF(fields);
    if (count != 19) {
        PyErr_Format(PyExc_ImportError, "_dirscan: os.stat_result has %ld fields, built for 19", count);
        return NULL;
    }
    return PyModule_Create(&definition);
}
