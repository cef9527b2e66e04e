/* Image files -> dataset writer: decoded with stb_image on all cores, a block at a time,
 * and appended in order, so that memory does not grow with the number of files. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image.h>

#include "data/import_images.h"

#define IMAGE_BLOCK 256

/* Decodes one file into dst (h x w x c). Returns 0, or writes a reason into err. */
static int decode_one(const char *path, int w, int h, int c, int exact, uint8_t *dst,
                      char *err, size_t err_size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_size, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    /* stb_image 2.27 (Debian 12's libstb) decodes 16-bit PNM wrongly: it keeps each sample's
     * low byte, and converting the channels it reads past its buffer (found by fuzz_image:
     * ASan's SEGV). Such files are refused rather than imported as noise. */
    char magic[2] = {0, 0};
    const int pnm = fread(magic, 1, 2, f) == 2 && magic[0] == 'P' && (magic[1] == '5' || magic[1] == '6');
    rewind(f);
    if (pnm && stbi_is_16_bit_from_file(f)) {
        fclose(f);
        snprintf(err, err_size, "%s: 16-bit PNM (maxval above 255) is not supported: convert it to 8 bits", path);
        return -1;
    }
    int iw, ih, ic;
    uint8_t *px = stbi_load_from_file(f, &iw, &ih, &ic, c);
    fclose(f);
    if (!px) {
        snprintf(err, err_size, "%s: cannot decode: %s", path, stbi_failure_reason());
        return -1;
    }
    int rc = 0;
    if (iw <= 0 || ih <= 0) { /* a header declaring a zero side, as in the probe below */
        snprintf(err, err_size, "%s: cannot decode: the image is %dx%d", path, iw, ih);
        rc = -1;
    } else if (iw == w && ih == h) {
        memcpy(dst, px, (size_t)w * (size_t)h * (size_t)c);
    } else if (exact) {
        snprintf(err, err_size,
                 "%s: image is %dx%d but the first image is %dx%d; pass a size (--size WxH) "
                 "to resize every image",
                 path, iw, ih, w, h);
        rc = -1;
    } else {
        mn_resize_image(px, iw, ih, c, dst, w, h);
    }
    stbi_image_free(px);
    return rc;
}

mn_status mn_import_images_probe(const mn_image_item *items, const uint32_t *order, size_t n,
                                 int skip_bad, const char *what, int *w, int *h, int *c) {
    for (size_t i = 0; (!*w || !*c) && i < n; i++) {
        int iw = 0, ih = 0, ic = 0;
        const char *p = items[order[i]].path;
        /* stb_image accepts some headers that declare a zero width or height (PNM). */
        const char *why = !stbi_info(p, &iw, &ih, &ic) ? stbi_failure_reason()
                          : iw <= 0 || ih <= 0         ? "empty image"
                                                       : NULL;
        if (!why) {
            if (!*w) *w = iw, *h = ih;
            if (!*c) *c = ic >= 3 ? 3 : 1;
        } else if (!skip_bad) {
            return mn_error_set(MN_ERR_FORMAT, "%s: cannot decode: %s", p, why);
        }
    }
    if (!*w || !*c) return mn_error_set(MN_ERR_FORMAT, "%s: no readable image", what);
    return MN_OK;
}

mn_status mn_import_images_write(mn_dataset_writer *wr, const mn_image_item *items,
                                 const uint32_t *order, const size_t count[MN_SPLITS],
                                 const mn_image_write_options *o) {
    const int w = o->width, h = o->height, c = o->channels;
    const size_t ib = (size_t)w * (size_t)h * (size_t)c;
    mn_status st = MN_OK;
    uint8_t *img = malloc(IMAGE_BLOCK * ib);
    int32_t *lab = malloc(IMAGE_BLOCK * sizeof *lab);
    int *ok = malloc(IMAGE_BLOCK * sizeof *ok);
    char(*errs)[512] = malloc(IMAGE_BLOCK * sizeof *errs);
    if (!img || !lab || !ok || !errs) st = mn_error_set(MN_ERR_NOMEM, "import: no memory for a block of images");
    size_t skipped = 0, offset = 0;
    for (int sp = 0; sp < MN_SPLITS && !st; offset += count[sp], sp++) {
        const uint32_t *ord = order + offset;
        size_t done = 0;
        for (size_t b0 = 0; b0 < count[sp] && !st; b0 += IMAGE_BLOCK) {
            int nb = (int)(count[sp] - b0 < IMAGE_BLOCK ? count[sp] - b0 : IMAGE_BLOCK);
#pragma omp parallel for schedule(dynamic, 4)
            for (int i = 0; i < nb; i++)
                ok[i] = decode_one(items[ord[b0 + (size_t)i]].path, w, h, c, o->exact,
                                   img + (size_t)i * ib, errs[i], sizeof errs[i]) == 0;
            /* In file order: compact the good ones; stop at the first bad one unless skipping. */
            int kept = 0;
            for (int i = 0; i < nb && !st; i++) {
                if (!ok[i]) {
                    if (!o->skip_bad) {
                        st = mn_error_set(MN_ERR_FORMAT, "%s", errs[i]);
                        break;
                    }
                    skipped++;
                    continue;
                }
                if (kept != i) memmove(img + (size_t)kept * ib, img + (size_t)i * ib, ib);
                lab[kept++] = items[ord[b0 + (size_t)i]].label;
            }
            if (!st && kept) st = mn_dataset_writer_append(wr, (mn_split)sp, img, lab, (size_t)kept);
            done += (size_t)nb;
            if (!st && o->progress)
                o->progress(o->progress_user,
                            sp == MN_SPLIT_TRAIN ? "train images"
                            : sp == MN_SPLIT_TEST ? "test images" : "val images",
                            done, count[sp]);
        }
    }
    free(img);
    free(lab);
    free(ok);
    free(errs);
    if (o->skipped) *o->skipped = skipped;
    return st;
}
