// Run-time loading of libOpenCL: dlopen once, dlsym every entry point into a table,
// and one forwarding function per entry point (see COpenCL.h).
#include "COpenCL.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define LATENT_CL_TYPEDEF(ret, name, params, args) typedef ret (CL_API_CALL *latent_##name##_fn) params;
LATENT_CL_FUNCTIONS(LATENT_CL_TYPEDEF)
#undef LATENT_CL_TYPEDEF

typedef struct {
#define LATENT_CL_FIELD(ret, name, params, args) latent_##name##_fn name;
    LATENT_CL_FUNCTIONS(LATENT_CL_FIELD)
#undef LATENT_CL_FIELD
} latent_cl_table;

static latent_cl_table table;
static int loaded;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const char *latent_cl_default_path(void) {
#ifdef __APPLE__
    return "/System/Library/Frameworks/OpenCL.framework/OpenCL";
#else
    return "libOpenCL.so.1";
#endif
}

int latent_cl_load(const char *path, char *error, size_t error_size) {
    pthread_mutex_lock(&lock);
    if (path == NULL) path = latent_cl_default_path();
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL) {
        const char *reason = dlerror();
        if (error && error_size) snprintf(error, error_size, "%s", reason ? reason : path);
        pthread_mutex_unlock(&lock);
        return 0;
    }
    latent_cl_table candidate;
    memset(&candidate, 0, sizeof candidate);
#define LATENT_CL_RESOLVE(ret, name, params, args)                                                 \
    candidate.name = (latent_##name##_fn)dlsym(handle, #name);                                    \
    if (candidate.name == NULL) {                                                                 \
        if (error && error_size) snprintf(error, error_size, "%s has no symbol %s", path, #name); \
        dlclose(handle);                                                                          \
        pthread_mutex_unlock(&lock);                                                              \
        return 0;                                                                                 \
    }
    LATENT_CL_FUNCTIONS(LATENT_CL_RESOLVE)
#undef LATENT_CL_RESOLVE
    if (!loaded) {
        // The first successful load stays for the life of the process (the handle is never
        // closed: drivers keep threads and atexit handlers).
        table = candidate;
        __atomic_store_n(&loaded, 1, __ATOMIC_RELEASE);
    } else {
        dlclose(handle);
    }
    pthread_mutex_unlock(&lock);
    return 1;
}

int latent_cl_loaded(void) { return __atomic_load_n(&loaded, __ATOMIC_ACQUIRE); }

// What a wrapper returns before a successful load (Latent never calls one then).
static const cl_int latent_cl_fail_cl_int = LATENT_CL_NOT_LOADED;
static const cl_context latent_cl_fail_cl_context = NULL;
static const cl_command_queue latent_cl_fail_cl_command_queue = NULL;
static const cl_mem latent_cl_fail_cl_mem = NULL;
static const cl_program latent_cl_fail_cl_program = NULL;
static const cl_kernel latent_cl_fail_cl_kernel = NULL;

#define LATENT_CL_FORWARD(ret, name, params, args)                           \
    ret latent_##name params {                                               \
        if (!__atomic_load_n(&loaded, __ATOMIC_ACQUIRE)) return latent_cl_fail_##ret; \
        return table.name args;                                              \
    }
LATENT_CL_FUNCTIONS(LATENT_CL_FORWARD)
#undef LATENT_CL_FORWARD
