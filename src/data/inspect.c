/* Looking at a cache: class counts and a contact sheet of sample images per class. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stb/stb_image_write.h>

#include "mcunas/dataset.h"

#define LABEL_BLOCK 65536

mn_status mn_dataset_class_counts(mn_dataset *ds, mn_split split, size_t *counts) {
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    memset(counts, 0, (size_t)info->classes * sizeof *counts);
    const size_t n = info->count[split];
    if (!n) return MN_OK;
    int32_t *lab = malloc(LABEL_BLOCK * sizeof *lab);
    if (!lab) return mn_error_set(MN_ERR_NOMEM, "no memory for a block of labels");
    mn_status st = MN_OK;
    for (size_t start = 0; start < n && !st; start += LABEL_BLOCK) {
        size_t b = n - start < LABEL_BLOCK ? n - start : LABEL_BLOCK;
        st = mn_dataset_read(ds, split, start, b, NULL, lab);
        for (size_t i = 0; i < b && !st; i++) counts[lab[i]]++;
    }
    free(lab);
    return st;
}

mn_status mn_dataset_preview(mn_dataset *ds, const char *png_path, int per_class,
                             int max_classes) {
    const mn_dataset_info *info = mn_dataset_get_info(ds);
    if (per_class < 1 || max_classes < 1)
        return mn_error_set(MN_ERR_INVALID_ARG, "preview: per_class and max_classes must be >= 1");
    const int rows = info->classes < max_classes ? info->classes : max_classes;
    const int h = info->shape.h, w = info->shape.w, c = info->shape.c;
    const int big = h > w ? h : w;
    int scale = (48 + big - 1) / big;
    if (scale < 1) scale = 1;
    const int gap = 2, th = h * scale, tw = w * scale;
    const size_t sheet_w = (size_t)per_class * (size_t)(tw + gap) + gap;
    const size_t sheet_h = (size_t)rows * (size_t)(th + gap) + gap;
    if (sheet_w * sheet_h > ((size_t)1 << 28))
        return mn_error_set(MN_ERR_INVALID_ARG, "preview: a %zux%zu sheet is too large", sheet_w, sheet_h);
    const size_t n = info->count[MN_SPLIT_TRAIN];
    uint8_t *sheet = malloc(sheet_w * sheet_h * 3);
    int *found = calloc((size_t)rows, sizeof *found);
    int32_t *lab = malloc(LABEL_BLOCK * sizeof *lab);
    uint8_t *img = malloc(mn_shape_count(info->shape));
    mn_status st = MN_OK;
    if (!sheet || !found || !lab || !img) st = mn_error_set(MN_ERR_NOMEM, "preview: no memory");
    if (!st) memset(sheet, 40, sheet_w * sheet_h * 3); /* dark grey background */
    int filled = 0;
    for (size_t start = 0; start < n && !st && filled < rows; start += LABEL_BLOCK) {
        size_t b = n - start < LABEL_BLOCK ? n - start : LABEL_BLOCK;
        st = mn_dataset_read(ds, MN_SPLIT_TRAIN, start, b, NULL, lab);
        for (size_t i = 0; i < b && !st && filled < rows; i++) {
            int k = lab[i];
            if (k >= rows || found[k] >= per_class) continue;
            st = mn_dataset_read(ds, MN_SPLIT_TRAIN, start + i, 1, img, NULL);
            if (st) break;
            const size_t x0 = (size_t)gap + (size_t)found[k] * (size_t)(tw + gap);
            const size_t y0 = (size_t)gap + (size_t)k * (size_t)(th + gap);
            for (int y = 0; y < th; y++)
                for (int x = 0; x < tw; x++) {
                    const uint8_t *p = img + ((size_t)(y / scale) * (size_t)w + (size_t)(x / scale)) * (size_t)c;
                    uint8_t *d = sheet + ((y0 + (size_t)y) * sheet_w + x0 + (size_t)x) * 3;
                    for (int ch = 0; ch < 3; ch++) d[ch] = p[c >= 3 ? ch : 0];
                }
            if (++found[k] == per_class) filled++;
        }
    }
    if (!st && !stbi_write_png(png_path, (int)sheet_w, (int)sheet_h, 3, sheet, (int)sheet_w * 3))
        st = mn_error_set(MN_ERR_IO, "%s: cannot write the PNG: %s", png_path,
                          errno ? strerror(errno) : "stb_image_write failed");
    free(sheet);
    free(found);
    free(lab);
    free(img);
    return st;
}
