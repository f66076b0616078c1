/* model_files.h — the models directory beside the database: the files of the models worth
 * keeping stay, the rest (older models, abandoned runs) go. The trainer prunes before each run. */
#ifndef INSPECTD_MODEL_FILES_H
#define INSPECTD_MODEL_FILES_H

#include <stddef.h>
#include <stdint.h>

struct scoring_store;

/* Removes from models_dir the regular .safetensors files (checkpoints and banks) that no longer
 * serve: every one that is not a file scoring_store_model_files keeps for `keep` (compared as
 * files, by device and inode, so a path registered in another form still protects its file), nor
 * one of the nspare paths (NULL entries allowed: a checkpoint to resume, the [trainer] import
 * file) or the bank beside it. So runs that were abandoned go too. Symlinks, other files and files
 * outside models_dir are never touched. Adds what it removed to *files and *bytes. Returns 0, or
 * -1 with the reason in err, having removed nothing, when the database cannot be read or a file of
 * the active model cannot be found. */
int model_files_prune(struct scoring_store *db, const char *models_dir, int keep,
                      const char *const *spare, int nspare, int *files, int64_t *bytes, char *err,
                      size_t errsz);

#endif
