/* The end of a search: retrain the winner, quantize it, export it, and write the files a
 * person reads (report.json, candidates.csv, a plot) into the output folder. */
#ifndef MCUNAS_REPORT_H
#define MCUNAS_REPORT_H

#include "mcunas/export.h"
#include "mcunas/search.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_FINAL_EPOCHS_DEFAULT 20
#define MN_CALIB_IMAGES_DEFAULT MN_EXPORT_CALIB_DEFAULT

typedef struct mn_final_result {
    mn_arch arch;
    mn_estimate est;           /* the cost model's figures for the winner */
    double val_acc;            /* best validation accuracy of the final training */
    double float_test_acc;
    double int8_test_acc;      /* our int8 interpreter on the whole test split */
    size_t flash_bytes;        /* flash for the search's runtime: model.tflite as written
                                * (TFLM), or the C runtime's model.c figure */
    double train_seconds;
} mn_final_result;

/* Retrains `winner` for `final_epochs`, quantizes with `calib` training images, writes
 * DIR/model.tflite, DIR/model_data.c, DIR/model_data.h and DIR/weights.h5. */
mn_status mn_search_finalize(const mn_search_config *cfg, const mn_loaded_data *data,
                             mn_point winner, int final_epochs, int calib, const char *dir,
                             mn_final_result *out);

/* Writes DIR/candidates.csv and DIR/plot.svg from the journal's entries, and
 * DIR/report.json (search settings, totals, the winner). `final` may be NULL when the search
 * found no feasible candidate. All three are written to temporary names and renamed. */
mn_status mn_search_write_report(const mn_search_config *cfg, const char *dir,
                                 const mn_search_result *search, const mn_final_result *final,
                                 double total_seconds);

#ifdef __cplusplus
}
#endif
#endif
