/* bayer.h — demosaicing of 8-bit Bayer sensor data (what colour line cameras send) to RGB.
 *
 * Bilinear interpolation: each missing colour is the mean of its nearest samples of that colour
 * (2 or 4 of them); at the borders the mosaic is mirrored, so the output has no dark frame. A flat
 * colour comes out flat and, away from the one-pixel border, a colour ramp comes out exact. */
#ifndef INSPECTD_BAYER_H
#define INSPECTD_BAYER_H

#include <stddef.h>
#include <stdint.h>

/* The colours of the top-left 2x2 cell, read row by row (GenICam names BayerRG8, BayerBG8, …). */
enum bayer_pattern { BAYER_RG = 0, BAYER_BG, BAYER_GB, BAYER_GR };

/* Converts a width x height mosaic (rows `raw_stride` bytes apart) into interleaved RGB
 * (height, width, 3), rows width*3 bytes apart. width and height must be >= 2. */
void bayer_to_rgb(uint8_t *rgb, const uint8_t *raw, size_t raw_stride, int width, int height,
                  enum bayer_pattern pattern);

#endif
