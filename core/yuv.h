/* yuv.h — planar YUV 4:2:0 (what libcamera's ISPs deliver) to interleaved 8-bit RGB.
 *
 * BT.601 coefficients, limited range (Y 16..235, chroma 16..240) or full range (JPEG/sYCC), in
 * fixed point; each 2x2 block of pixels shares one U and one V sample. Odd widths and heights are
 * fine: the last column/row uses the chroma sample of its block. */
#ifndef INSPECTD_YUV_H
#define INSPECTD_YUV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* y: (height, width) rows y_stride apart; u, v: ((height+1)/2, (width+1)/2) rows uv_stride apart;
 * rgb: (height, width, 3) rows width*3 apart. */
void yuv420_to_rgb(uint8_t *rgb, const uint8_t *y, size_t y_stride, const uint8_t *u,
                   const uint8_t *v, size_t uv_stride, int width, int height, bool full_range);

#endif
