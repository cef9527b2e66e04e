/* Names in a dataset cache shared by its reader (dataset.c), its writer (dataset_writer.c)
 * and docs/dataset-format.md. */
#ifndef MN_DATA_DATASET_NAMES_H
#define MN_DATA_DATASET_NAMES_H

#define MN_H5_FORMAT_NAME "mcunas-dataset"
#define MN_H5_CLASS_NAMES "/class_names"

#endif
