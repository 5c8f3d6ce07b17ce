#ifndef LATENT_COPENCL_H
#define LATENT_COPENCL_H

/* OpenCL 1.2 declarations from the system headers (opencl-headers on Linux, the SDK on
 * macOS) and a run-time loader: libOpenCL is opened with dlopen, never linked, so a
 * binary built here starts on a machine without OpenCL and falls back to the CPU.
 * Every entry point Latent uses is reached through latent_<name>, which forwards to the
 * function found by dlsym (or returns LATENT_CL_NOT_LOADED before a successful load). */

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#ifndef CL_USE_DEPRECATED_OPENCL_1_2_APIS
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#endif

#ifdef __APPLE__
#include <OpenCL/cl.h>
#else
#include <CL/cl.h>
#endif

#include <stddef.h>

/* Returned by every wrapper while no library is loaded. */
#define LATENT_CL_NOT_LOADED (-9999)

/* Opens `path` (NULL: the platform's default, libOpenCL.so.1 / the OpenCL framework) and
 * resolves every entry point. Returns 1 on success; 0 with a message in `error` otherwise.
 * A failed load leaves an earlier successful one in place. Thread-safe. */
int latent_cl_load(const char *path, char *error, size_t error_size);

/* 1 when a library is loaded. */
int latent_cl_loaded(void);

/* The default library path for this platform. */
const char *latent_cl_default_path(void);

#define LATENT_CL_FUNCTIONS(X) \
    X(cl_int, clGetPlatformIDs, (cl_uint a0, cl_platform_id *a1, cl_uint *a2), (a0, a1, a2)) \
    X(cl_int, clGetPlatformInfo, (cl_platform_id a0, cl_platform_info a1, size_t a2, void *a3, size_t *a4), (a0, a1, a2, a3, a4)) \
    X(cl_int, clGetDeviceIDs, (cl_platform_id a0, cl_device_type a1, cl_uint a2, cl_device_id *a3, cl_uint *a4), (a0, a1, a2, a3, a4)) \
    X(cl_int, clGetDeviceInfo, (cl_device_id a0, cl_device_info a1, size_t a2, void *a3, size_t *a4), (a0, a1, a2, a3, a4)) \
    X(cl_context, clCreateContext, (const cl_context_properties *a0, cl_uint a1, const cl_device_id *a2, void (CL_CALLBACK *a3)(const char *, const void *, size_t, void *), void *a4, cl_int *a5), (a0, a1, a2, a3, a4, a5)) \
    X(cl_int, clReleaseContext, (cl_context a0), (a0)) \
    X(cl_command_queue, clCreateCommandQueue, (cl_context a0, cl_device_id a1, cl_command_queue_properties a2, cl_int *a3), (a0, a1, a2, a3)) \
    X(cl_int, clReleaseCommandQueue, (cl_command_queue a0), (a0)) \
    X(cl_mem, clCreateBuffer, (cl_context a0, cl_mem_flags a1, size_t a2, void *a3, cl_int *a4), (a0, a1, a2, a3, a4)) \
    X(cl_int, clReleaseMemObject, (cl_mem a0), (a0)) \
    X(cl_int, clEnqueueReadBuffer, (cl_command_queue a0, cl_mem a1, cl_bool a2, size_t a3, size_t a4, void *a5, cl_uint a6, const cl_event *a7, cl_event *a8), (a0, a1, a2, a3, a4, a5, a6, a7, a8)) \
    X(cl_int, clEnqueueWriteBuffer, (cl_command_queue a0, cl_mem a1, cl_bool a2, size_t a3, size_t a4, const void *a5, cl_uint a6, const cl_event *a7, cl_event *a8), (a0, a1, a2, a3, a4, a5, a6, a7, a8)) \
    X(cl_program, clCreateProgramWithSource, (cl_context a0, cl_uint a1, const char **a2, const size_t *a3, cl_int *a4), (a0, a1, a2, a3, a4)) \
    X(cl_program, clCreateProgramWithBinary, (cl_context a0, cl_uint a1, const cl_device_id *a2, const size_t *a3, const unsigned char **a4, cl_int *a5, cl_int *a6), (a0, a1, a2, a3, a4, a5, a6)) \
    X(cl_int, clBuildProgram, (cl_program a0, cl_uint a1, const cl_device_id *a2, const char *a3, void (CL_CALLBACK *a4)(cl_program, void *), void *a5), (a0, a1, a2, a3, a4, a5)) \
    X(cl_int, clGetProgramInfo, (cl_program a0, cl_program_info a1, size_t a2, void *a3, size_t *a4), (a0, a1, a2, a3, a4)) \
    X(cl_int, clGetProgramBuildInfo, (cl_program a0, cl_device_id a1, cl_program_build_info a2, size_t a3, void *a4, size_t *a5), (a0, a1, a2, a3, a4, a5)) \
    X(cl_int, clReleaseProgram, (cl_program a0), (a0)) \
    X(cl_kernel, clCreateKernel, (cl_program a0, const char *a1, cl_int *a2), (a0, a1, a2)) \
    X(cl_int, clReleaseKernel, (cl_kernel a0), (a0)) \
    X(cl_int, clSetKernelArg, (cl_kernel a0, cl_uint a1, size_t a2, const void *a3), (a0, a1, a2, a3)) \
    X(cl_int, clGetKernelWorkGroupInfo, (cl_kernel a0, cl_device_id a1, cl_kernel_work_group_info a2, size_t a3, void *a4, size_t *a5), (a0, a1, a2, a3, a4, a5)) \
    X(cl_int, clEnqueueNDRangeKernel, (cl_command_queue a0, cl_kernel a1, cl_uint a2, const size_t *a3, const size_t *a4, const size_t *a5, cl_uint a6, const cl_event *a7, cl_event *a8), (a0, a1, a2, a3, a4, a5, a6, a7, a8)) \
    X(cl_int, clFlush, (cl_command_queue a0), (a0)) \
    X(cl_int, clFinish, (cl_command_queue a0), (a0)) \
    X(cl_int, clWaitForEvents, (cl_uint a0, const cl_event *a1), (a0, a1)) \
    X(cl_int, clReleaseEvent, (cl_event a0), (a0)) \
    X(cl_int, clGetEventProfilingInfo, (cl_event a0, cl_profiling_info a1, size_t a2, void *a3, size_t *a4), (a0, a1, a2, a3, a4))

#define LATENT_CL_DECLARE(ret, name, params, args) ret latent_##name params;
LATENT_CL_FUNCTIONS(LATENT_CL_DECLARE)
#undef LATENT_CL_DECLARE

/* Error codes the headers may lack (cl_khr_icd). */
#define LATENT_CL_PLATFORM_NOT_FOUND_KHR (-1001)

#endif
