/* line_config.h — the keys of the sections that concern the line's outputs ([results] now),
 * parsed for config.c (which owns the file, its lines and its errors) and checked here. */
#ifndef INSPECTD_LINE_CONFIG_H
#define INSPECTD_LINE_CONFIG_H

#include <stddef.h>

#define LINE_MAX_SHIFTS 12

struct line_config {
    /* [results] shifts: the local times of day (minutes after midnight, ascending) at which a
     * shift starts; nshifts 0: none (the summary is by hour only) */
    int shifts[LINE_MAX_SHIFTS];
    int nshifts;
};

void line_config_defaults(struct line_config *c);

/* Applies key = value of [section]. Returns 1 when applied, 0 when the key is unknown or its
 * value bad (why says so), -1 when the section is not one of the line's. */
int line_config_set(struct line_config *c, const char *section, const char *key, const char *value,
                    char *why, size_t whysz);

/* "06:00,14:00,22:00": up to LINE_MAX_SHIFTS times HH:MM, ascending, into minutes after midnight
 * ("" or blanks: none). Returns the count, or -1 with the reason in why. */
int line_parse_shifts(const char *v, int *minutes, char *why, size_t whysz);

#endif
