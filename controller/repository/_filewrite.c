/* A batch of restored whole files written, sized and given their owner, mode and times:
 * every system call of the batch made with the GIL released once, not once a call.
 *
 * Why native: a restore of 300,000 small files made seven system calls a file (open,
 * pwrite, fchown, fchmod, futimens, close, and the index's pread), each one a Python call
 * that releases and retakes the GIL. With the restore's worker threads waiting for it,
 * strace counted some 15 futex calls a file (4.6 million), and the system time exceeded
 * the wall-clock time. Made here, a region's files are one call.
 *
 * Only the common case is answered here: a file whose content is one blob, with no
 * extended attributes. A file whose calls fail at any step is left to the Python code
 * (controller/repository/restorer.py), which makes them again from the start and raises
 * or reports as it always did; every step can be made twice with the same result.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

typedef struct {
    const char *path;
    Py_buffer data;
    int create;              /* nothing stands at path: O_CREAT */
    long long size;          /* the file's size: a trailing hole is made by ftruncate */
    unsigned int mode;
    unsigned int uid, gid;   /* used when chown is asked */
    long long mtime_ns;
    int failed;
} Job;

static int all_zero(const char *data, size_t length) {
    return length > 0 && data[0] == 0 && memcmp(data, data + 1, length - 1) == 0;
}

/* The file's calls, in the order restorer.py makes them; 0, or -1 at the first failure. */
static int write_one(const Job *job, int chown) {
    int flags = O_WRONLY | O_NOFOLLOW | O_CLOEXEC | (job->create ? O_CREAT : 0);
    int fd = open(job->path, flags, 0600);
    if (fd < 0)
        return -1;
    const char *data = job->data.buf;
    size_t length = (size_t)job->data.len, done = 0;
    if (all_zero(data, length))
        length = 0; /* zeros stay a hole */
    while (done < length) {
        ssize_t put = pwrite(fd, data + done, length - done, (off_t)done);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            goto failed;
        done += (size_t)put;
    }
    if ((long long)length != job->size && ftruncate(fd, (off_t)job->size) < 0)
        goto failed;
    if (chown && fchown(fd, job->uid, job->gid) < 0)
        goto failed;
    if (fchmod(fd, job->mode) < 0)
        goto failed;
    struct timespec times[2];
    times[0].tv_sec = times[1].tv_sec = job->mtime_ns / 1000000000LL;
    times[0].tv_nsec = times[1].tv_nsec = job->mtime_ns % 1000000000LL;
    if (times[0].tv_nsec < 0) { /* before 1970: the remainder takes the sign of the dividend */
        times[0].tv_sec = times[1].tv_sec -= 1;
        times[0].tv_nsec = times[1].tv_nsec += 1000000000LL;
    }
    if (futimens(fd, times) < 0)
        goto failed;
    return close(fd);
failed:
    close(fd);
    return -1;
}

static void release(Job *jobs, Py_ssize_t count) {
    for (Py_ssize_t i = 0; i < count; i++)
        PyBuffer_Release(&jobs[i].data);
    PyMem_Free(jobs);
}

static PyObject *write_files(PyObject *Py_UNUSED(module), PyObject *args) {
    PyObject *given;
    int chown;
    if (!PyArg_ParseTuple(args, "Op:write_files", &given, &chown))
        return NULL;
    /* A tuple of our own: its items (and their paths and data) live until the end. */
    PyObject *files = PySequence_Tuple(given);
    if (files == NULL)
        return NULL;
    Py_ssize_t count = PyTuple_GET_SIZE(files), parsed = 0;
    Job *jobs = PyMem_Calloc(count ? (size_t)count : 1, sizeof(Job));
    if (jobs == NULL) {
        Py_DECREF(files);
        return PyErr_NoMemory();
    }
    for (; parsed < count; parsed++) {
        Job *job = &jobs[parsed];
        PyObject *path;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(files, parsed), "Sy*pLIIIL:write_files", &path, &job->data,
                              &job->create, &job->size, &job->mode, &job->uid, &job->gid, &job->mtime_ns))
            break;
        job->path = PyBytes_AS_STRING(path);
    }
    if (parsed < count) {
        release(jobs, parsed);
        Py_DECREF(files);
        return NULL;
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < count; i++)
        jobs[i].failed = write_one(&jobs[i], chown) < 0;
    Py_END_ALLOW_THREADS
    PyObject *failed = PyList_New(0);
    for (Py_ssize_t i = 0; failed != NULL && i < count; i++) {
        if (!jobs[i].failed)
            continue;
        PyObject *index = PyLong_FromSsize_t(i);
        if (index == NULL || PyList_Append(failed, index) < 0)
            Py_CLEAR(failed);
        Py_XDECREF(index);
    }
    release(jobs, count);
    Py_DECREF(files);
    return failed;
}

static PyMethodDef methods[] = {
    {"write_files", write_files, METH_VARARGS,
     "write_files([(path, data, create, size, mode, uid, gid, mtime_ns)], chown) -> [index of a file that failed]\n"
     "Each file is opened (created when `create`), written at 0 unless its data are all zeros, cut to `size`,\n"
     "given uid and gid (when `chown`), mode and mtime, and closed; a failed file is left as it stands."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef definition = {
    PyModuleDef_HEAD_INIT, .m_name = "_filewrite", .m_size = -1, .m_methods = methods,
};

PyMODINIT_FUNC PyInit__filewrite(void) { return PyModule_Create(&definition); }
