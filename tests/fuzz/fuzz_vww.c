/* The Visual Wake Words importer's COCO annotation reader: part 0 of the input is an
 * instances_*.json file, part 1 (when present) the minival id list. Its images are two
 * small PGM files, a.pgm and b.pgm, in the images folder. */
#include "fuzz_util.h"
#include "mcunas/dataset.h"

#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int images_written;
    char path[1024], ann[1024], ids[1024], out[1024], dir[1024];
    if (!images_written) {
        static const char pgm[] = "P5\n4 3\n255\n\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c";
        mn_fuzz_write("coco/a.pgm", (const uint8_t *)pgm, sizeof pgm - 1, path, sizeof path);
        mn_fuzz_write("coco/b.pgm", (const uint8_t *)pgm, sizeof pgm - 1, path, sizeof path);
        images_written = 1;
    }
    const uint8_t *json, *list;
    size_t n_json, n_list;
    mn_fuzz_split(data, size, &json, &n_json, &list, &n_list);
    mn_fuzz_write("instances.json", json, n_json, ann, sizeof ann);
    mn_fuzz_write("minival.txt", list, n_list, ids, sizeof ids);
    mn_fuzz_write("vww.h5", NULL, 0, out, sizeof out);
    mn_fuzz_remove("vww.h5");
    snprintf(dir, sizeof dir, "%s/coco", mn_fuzz_dir());
    const char *anns[1] = {ann}, *dirs[1] = {dir};
    mn_import_vww_options o;
    memset(&o, 0, sizeof o);
    o.annotations = anns;
    o.image_dirs = dirs;
    o.n_sources = 1;
    o.minival_ids = n_list ? ids : NULL;
    o.output = out;
    o.width = o.height = 4;
    o.channels = 1;
    mn_import_vww(&o);
    mn_fuzz_remove("vww.h5");
    return 0;
}
