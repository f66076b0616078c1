/* cmd_cameras.c — `inspectd cameras`: the cameras each camera driver of the source registry can see
 * (GigE Vision and USB3 Vision through Aravis, libcamera when built in), as a table or as JSON. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "commands.h"
#include "source.h"

struct listing {
    bool json;
    int shown;
    json_t *array; /* --json */
};

static void print_row(const struct camera_info *ci, void *ctx)
{
    struct listing *l = ctx;
    if (l->json) {
        json_array_append_new(l->array,
                              json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "driver",
                                        ci->driver, "id", ci->id, "vendor", ci->vendor, "model",
                                        ci->model, "serial", ci->serial, "address", ci->address,
                                        "formats", ci->formats, "note", ci->note));
    } else {
        if (l->shown == 0)
            printf("%-10s %-32s %-16s %-20s %-16s %s\n", "DRIVER", "ID (device =)", "VENDOR",
                   "MODEL", "ADDRESS", "FORMATS");
        printf("%-10s %-32s %-16s %-20s %-16s %s\n", ci->driver, ci->id,
               ci->vendor[0] ? ci->vendor : "-", ci->model[0] ? ci->model : "-",
               ci->address[0] ? ci->address : "-", ci->formats[0] ? ci->formats : ci->note);
    }
    l->shown++;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: inspectd cameras [--json]\n"
                 "Lists the cameras each driver can see (id, vendor, model, address, the pixel\n"
                 "formats inspectd can take). A camera is used by a config section such as\n"
                 "  [camera.line1]\n  driver = aravis\n  device = <ID>\n"
                 "  --json   one JSON array of objects instead of the table\n");
}

int cmd_cameras(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    struct listing l = {0};
    int o;
    while ((o = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (o == 'j') {
            l.json = true;
        } else if (o == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return EX_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return EX_USAGE;
    }
    if (l.json && (l.array = json_array()) == NULL) return EX_SOFTWARE;
    size_t failed = 0, n = 0;
    for (const char *const *d = source_drivers(); *d; d++) {
        char err[256];
        if (!source_lists_cameras(*d)) continue;
        n++;
        if (source_list_cameras(*d, print_row, &l, err, sizeof err) < 0) {
            fprintf(stderr, "inspectd: %s: %s\n", *d, err);
            failed++;
        }
    }
    if (l.json) {
        char *text = json_dumps(l.array, JSON_INDENT(2));
        json_decref(l.array);
        if (text == NULL) return EX_SOFTWARE;
        printf("%s\n", text);
        free(text);
    } else if (l.shown == 0) {
        printf("no cameras found (drivers:");
        for (const char *const *d = source_drivers(); *d; d++)
            if (source_lists_cameras(*d)) printf(" %s", *d);
        printf(")\n");
    }
    return failed == n ? 1 : 0;
}
