/* mcunas devices: the OpenCL platforms and devices this machine offers, with the flat
 * index that `--device N` of train and bench takes. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mcunas/backend.h"
#ifdef MN_HAVE_OPENCL
#include "backend/opencl/opencl.h"
#endif

static void usage(FILE *f) {
    fprintf(f, "Usage: mcunas devices [--json]\n\n"
               "Lists the OpenCL devices of every platform with the index that\n"
               "`mcunas train|bench --backend opencl --device N` takes: type, compute units,\n"
               "global memory, largest single allocation, and whether the device's memory\n"
               "is the host's (CL_DEVICE_HOST_UNIFIED_MEMORY, or a CPU device).\n\n"
               "Options:\n"
               "  --json      one JSON object on stdout\n"
               "  -h, --help  this help\n");
}

#ifdef MN_HAVE_OPENCL
static double gib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }
#endif

int mn_cmd_devices(int argc, char **argv) {
    static const struct option longopts[] = {
        {"json", no_argument, 0, 'j'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *cmd = "devices";
    int json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': usage(stdout); return MN_EXIT_OK;
        default: return mn_cli_usage_error(cmd, "unknown option");
        }
    }
    if (optind < argc) return mn_cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
#ifndef MN_HAVE_OPENCL
    if (json) {
        mn_json j;
        mn_json_begin(&j, stdout);
        mn_json_raw(&j, "opencl_built", "false");
        mn_json_int(&j, "count", 0);
        mn_json_raw(&j, "devices", "[]");
        mn_json_end(&j);
    } else {
        printf("opencl: not built (OpenCL/CLBlast not found when mcunas was configured)\n"
               "backends: %s\n",
               mn_backend_available());
    }
    return MN_EXIT_OK;
#else
    mn_ocl_device_info *devs = NULL;
    int n = 0;
    mn_status st = mn_ocl_list_devices(&devs, &n);
    if (st) return mn_cli_fail(cmd, st);
    if (json) {
        char *arr = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&arr, &len);
        if (!m) {
            free(devs);
            fprintf(stderr, "mcunas devices: out of memory\n");
            return MN_EXIT_FAILURE;
        }
        fputc('[', m);
        for (int i = 0; i < n; i++) {
            const mn_ocl_device_info *d = &devs[i];
            mn_json j;
            if (i) fputc(',', m);
            mn_json_begin(&j, m);
            mn_json_int(&j, "index", d->index);
            mn_json_int(&j, "platform_index", d->platform_index);
            mn_json_str(&j, "platform", d->platform);
            mn_json_str(&j, "name", d->name);
            mn_json_str(&j, "vendor", d->vendor);
            mn_json_str(&j, "type", d->type);
            mn_json_str(&j, "version", d->version);
            mn_json_str(&j, "driver", d->driver);
            mn_json_int(&j, "compute_units", d->compute_units);
            mn_json_int(&j, "global_mem_bytes", (long long)d->global_mem_bytes);
            mn_json_int(&j, "max_alloc_bytes", (long long)d->max_alloc_bytes);
            mn_json_raw(&j, "host_unified_memory", d->host_unified ? "true" : "false");
            mn_json_raw(&j, "fp64", d->fp64 ? "true" : "false");
            fputc('}', m); /* mn_json_end would add a newline */
        }
        fputc(']', m);
        fclose(m);
        mn_json j;
        mn_json_begin(&j, stdout);
        mn_json_raw(&j, "opencl_built", "true");
        mn_json_int(&j, "count", n);
        mn_json_raw(&j, "devices", arr);
        mn_json_end(&j);
        free(arr);
    } else if (n == 0) {
        printf("No OpenCL device found (no platform or ICD installed; on Debian, "
               "pocl-opencl-icd gives a CPU device).\n");
    } else {
        printf("OpenCL devices (use --backend opencl --device N):\n");
        for (int i = 0; i < n; i++) {
            const mn_ocl_device_info *d = &devs[i];
            printf("  [%d] %s (%s), platform %d '%s'\n", d->index, d->name, d->type,
                   d->platform_index, d->platform);
            printf("      %s, driver %s, %u compute units%s\n", d->version, d->driver,
                   d->compute_units, d->fp64 ? ", fp64" : "");
            printf("      global memory %.2f GiB, max allocation %.2f GiB, memory shared with "
                   "the host: %s\n",
                   gib(d->global_mem_bytes), gib(d->max_alloc_bytes),
                   d->host_unified ? "yes" : "no");
        }
    }
    free(devs);
    return MN_EXIT_OK;
#endif
}
