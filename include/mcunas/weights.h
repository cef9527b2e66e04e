/* Weight files (docs/weights-format.md): an HDF5 file holding the architecture as root
 * attributes and the parameters as two flat float32 arrays whose order mn_arch defines. */
#ifndef MCUNAS_WEIGHTS_H
#define MCUNAS_WEIGHTS_H

#include "mcunas/arch.h"
#include "mcunas/net.h"
#include "mcunas/status.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_WEIGHTS_FORMAT_VERSION 1

/* Writes "<path>.tmp" and renames it to path, so a reader never sees half a file. */
mn_status mn_weights_save(const char *path, mn_net *net);
/* Reads the architecture a weight file was saved from. */
mn_status mn_weights_read_arch(const char *path, mn_arch *arch);
/* Loads parameters into `net`, whose architecture must equal the file's. */
mn_status mn_weights_load(const char *path, mn_net *net);

#ifdef __cplusplus
}
#endif
#endif
