/* Image decoding in the folder importer: the input is one image file in a one-class folder
 * (stb_image detects the format from the bytes). The first byte picks the options: bit 0,
 * a fixed 8x8 size (the resize path) or the image's own; bit 1, 1 channel or 3; bit 2,
 * skip unreadable images instead of failing. */
#include "fuzz_util.h"
#include "mcunas/dataset.h"

#include <stb/stb_image.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const uint8_t flags = data[0];
    /* Decoding and resizing take time in proportion to the declared size, and a 100-byte
     * BMP may declare 27 megapixels (stb_image fills what the file lacks): a legitimate
     * photo's cost, not a finding. Inputs over a megapixel are left out. */
    int iw, ih, ic;
    if (stbi_info_from_memory(data + 1, (int)(size - 1 > 1 << 30 ? 1 << 30 : size - 1), &iw, &ih, &ic) &&
        (double)iw * ih > 1 << 20)
        return 0;
    char path[1024], out[1024], dir[1024];
    mn_fuzz_write("images/cls/a.png", data + 1, size - 1, path, sizeof path);
    mn_fuzz_write("images.h5", NULL, 0, out, sizeof out);
    mn_fuzz_remove("images.h5");
    snprintf(dir, sizeof dir, "%s/images", mn_fuzz_dir());
    mn_import_folder_options o;
    memset(&o, 0, sizeof o);
    o.dir = dir;
    o.output = out;
    if (flags & 1) o.width = o.height = 8;
    o.channels = flags & 2 ? 1 : 3;
    o.skip_bad = (flags & 4) != 0;
    mn_import_folder(&o);
    mn_fuzz_remove("images.h5");
    return 0;
}
