/* mcunas devices: the devices of every backend that has them (OpenCL's platforms and
 * devices, CUDA's GPUs), with the index that `--device N` of train and bench takes. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mcunas/backend.h"

static void usage(FILE *f) {
    fprintf(f, "Usage: mcunas devices [--json]\n\n"
               "Lists the devices of every backend that has them (the OpenCL devices of every\n"
               "platform, the CUDA GPUs) with the index that\n"
               "`mcunas train|bench --backend opencl|cuda --device N` takes: type, compute\n"
               "units, global memory, largest single allocation, and whether the device's\n"
               "memory is the host's (CL_DEVICE_HOST_UNIFIED_MEMORY or a CPU device; an\n"
               "integrated GPU such as a Jetson's).\n\n"
               "Options:\n"
               "  --json      one JSON object on stdout\n"
               "  -h, --help  this help\n");
}

static double gib(size_t bytes) { return (double)bytes / (1024.0 * 1024.0 * 1024.0); }

/* The device backends the registry knows, each with its devices when it is built. */
#define MAX_DEVICE_BACKENDS 8
typedef struct listing {
    const mn_backend_desc *desc;
    mn_device_info *devs;
    int n;
} listing;

static void listings_free(listing *l, int count) {
    for (int i = 0; i < count; i++) free(l[i].devs);
}

/* One JSON object per device, comma-separated, appended to m. */
static void json_devices(FILE *m, const listing *l, int *first) {
    for (int i = 0; i < l->n; i++) {
        const mn_device_info *d = &l->devs[i];
        mn_json j;
        if (!*first) fputc(',', m);
        *first = 0;
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
}

/* {"<backend>_built": ..., (each device backend), "count": N, "devices": [...]} */
static int print_json(const listing *l, int count) {
    char *arr = NULL;
    size_t len = 0;
    int total = 0, first = 1;
    FILE *m = open_memstream(&arr, &len);
    if (!m) {
        fprintf(stderr, "mcunas devices: out of memory\n");
        return MN_EXIT_FAILURE;
    }
    fputc('[', m);
    for (int i = 0; i < count; i++) {
        json_devices(m, &l[i], &first);
        total += l[i].n;
    }
    fputc(']', m);
    fclose(m);
    mn_json j;
    mn_json_begin(&j, stdout);
    for (int i = 0; i < count; i++) {
        char key[64];
        snprintf(key, sizeof key, "%s_built", l[i].desc->name);
        mn_json_raw(&j, key, l[i].desc->built ? "true" : "false");
    }
    mn_json_int(&j, "count", total);
    mn_json_raw(&j, "devices", arr);
    mn_json_end(&j);
    free(arr);
    return MN_EXIT_OK;
}

static void print_text(const listing *l, int count) {
    int missing = 0;
    for (int i = 0; i < count; i++) {
        const mn_backend_desc *b = l[i].desc;
        if (!b->built) {
            printf("%s: not built (%s)\n", b->name, b->note);
            missing = 1;
        } else if (l[i].n == 0) {
            printf("No %s device found (%s).\n", b->title, b->note);
        } else {
            printf("%s devices (use --backend %s --device N):\n", b->title, b->name);
            for (int k = 0; k < l[i].n; k++) {
                const mn_device_info *d = &l[i].devs[k];
                printf("  [%d] %s (%s), platform %d '%s'\n", d->index, d->name, d->type,
                       d->platform_index, d->platform);
                printf("      %s, driver %s, %u compute units%s\n", d->version, d->driver,
                       d->compute_units, d->fp64 ? ", fp64" : "");
                printf("      global memory %.2f GiB, max allocation %.2f GiB, memory shared "
                       "with the host: %s\n",
                       gib(d->global_mem_bytes), gib(d->max_alloc_bytes),
                       d->host_unified ? "yes" : "no");
            }
        }
    }
    if (missing) printf("backends: %s\n", mn_backend_available());
}

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
    listing l[MAX_DEVICE_BACKENDS];
    int count = 0;
    const mn_backend_desc *b;
    for (int i = 0; (b = mn_backend_describe(i)) && count < MAX_DEVICE_BACKENDS; i++) {
        if (!b->has_devices) continue;
        l[count] = (listing){b, NULL, 0};
        if (b->built) {
            mn_status st = mn_backend_list_devices(b->name, &l[count].devs, &l[count].n);
            if (st) {
                listings_free(l, count);
                return mn_cli_fail(cmd, st);
            }
        }
        count++;
    }
    int rc = MN_EXIT_OK;
    if (json)
        rc = print_json(l, count);
    else
        print_text(l, count);
    listings_free(l, count);
    return rc;
}
