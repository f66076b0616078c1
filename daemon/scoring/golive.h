/* golive.h — when a newly trained model of a recipe may go live: it must flag the defects
 * operators confirmed on that recipe's frames (up to the newest 256 of them) at least as well as
 * the recipe's active model does. Without confirmed
 * defects or without an active model there is nothing to compare, and it may. */
#ifndef INSPECTD_GOLIVE_H
#define INSPECTD_GOLIVE_H

#include <stdbool.h>
#include <stddef.h>

struct scoring_store;

/* The model of checkpoint ckpt with its bank, scored with threads on the confirmed defects of
 * recipe's frames.
 * Returns true when it may be activated; otherwise false with the reason in why ("flags 40.0 % of
 * 12 confirmed defects, model V 75.0 %"). A model that cannot be loaded or run counts as flagging
 * none. */
bool golive_allowed(struct scoring_store *ss, const char *recipe, const char *ckpt,
                    const char *bank, int threads, char *why, size_t whysz);

#endif
