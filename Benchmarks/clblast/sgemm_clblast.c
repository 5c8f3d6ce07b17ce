// CLBlast's SGEMM on the same OpenCL device as `latent bench ops --backend opencl`, for
// Benchmarks/clblast/compare.sh. Row-major C = A * B on square matrices, timed like
// Benchmarks/LatentBench/Timing.swift: one warm-up call (CLBlast compiles its kernels
// then), then repeats until 0.25 s have passed (at least 5), the median of wall times
// from enqueue to clFinish. Prints one JSON object: {"device": ..., "gflops": {"256": ...}}.
//   cc -O2 -o sgemm_clblast sgemm_clblast.c -lclblast -lOpenCL
//   ./sgemm_clblast [DEVICE_INDEX] [SIZE ...]   (device index counts across platforms)
#define CL_TARGET_OPENCL_VERSION 120
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void fail(const char *what, int code) {
    fprintf(stderr, "sgemm_clblast: %s failed (%d)\n", what, code);
    exit(1);
}

int main(int argc, char **argv) {
    int wanted = argc > 1 ? atoi(argv[1]) : 0;
    int default_sizes[] = {256, 512, 1024, 2048};
    int size_count = argc > 2 ? argc - 2 : 4;

    cl_platform_id platforms[16];
    cl_uint platform_count = 0;
    cl_int status = clGetPlatformIDs(16, platforms, &platform_count);
    if (status != CL_SUCCESS || platform_count == 0) fail("clGetPlatformIDs", status);
    cl_device_id device = NULL;
    int index = 0;
    for (cl_uint p = 0; p < platform_count && device == NULL; ++p) {
        cl_device_id devices[16];
        cl_uint count = 0;
        if (clGetDeviceIDs(platforms[p], CL_DEVICE_TYPE_ALL, 16, devices, &count) != CL_SUCCESS) continue;
        for (cl_uint d = 0; d < count; ++d, ++index) {
            if (index == wanted) { device = devices[d]; break; }
        }
    }
    if (device == NULL) fail("finding the device", wanted);
    char name[256] = {0};
    clGetDeviceInfo(device, CL_DEVICE_NAME, sizeof name - 1, name, NULL);
    cl_context context = clCreateContext(NULL, 1, &device, NULL, NULL, &status);
    if (status != CL_SUCCESS) fail("clCreateContext", status);
    cl_command_queue queue = clCreateCommandQueue(context, device, 0, &status);
    if (status != CL_SUCCESS) fail("clCreateCommandQueue", status);

    printf("{\"device\": \"%s\", \"library\": \"CLBlast\", \"gflops\": {", name);
    for (int s = 0; s < size_count; ++s) {
        size_t n = (size_t)(argc > 2 ? atoi(argv[2 + s]) : default_sizes[s]);
        size_t bytes = n * n * sizeof(float);
        float *host = malloc(bytes);
        for (size_t i = 0; i < n * n; ++i) host[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
        cl_mem a = clCreateBuffer(context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, host, &status);
        cl_mem b = clCreateBuffer(context, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, host, &status);
        cl_mem c = clCreateBuffer(context, CL_MEM_READ_WRITE, bytes, NULL, &status);
        if (status != CL_SUCCESS) fail("clCreateBuffer", status);
        double samples[200];
        int taken = 0;
        double start = 0;
        for (int run = -1; run < 200; ++run) {
            double before = now();
            CLBlastStatusCode code = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, n, n, n,
                                                  1.0f, a, 0, n, b, 0, n, 0.0f, c, 0, n, &queue, NULL);
            if (code != CLBlastSuccess) fail("CLBlastSgemm", code);
            clFinish(queue);
            double elapsed = now() - before;
            if (run < 0) { start = now(); continue; }
            samples[taken++] = elapsed;
            if (taken >= 5 && now() - start >= 0.25) break;
        }
        qsort(samples, (size_t)taken, sizeof samples[0], compare);
        double seconds = samples[taken / 2];
        printf("%s\"%zu\": %.1f", s ? ", " : "", n, 2.0 * (double)n * (double)n * (double)n / seconds / 1e9);
        fflush(stdout);
        clReleaseMemObject(a);
        clReleaseMemObject(b);
        clReleaseMemObject(c);
        free(host);
    }
    printf("}}\n");
    clReleaseCommandQueue(queue);
    clReleaseContext(context);
    return 0;
}
