/* heatmap.h — patch-score grids to image-size anomaly maps, and their colour overlay on a frame.
 *
 * Upsampling is bilinear with pixel centres aligned as PyTorch's interpolate(align_corners=False)
 * (the grid covers the image edge to edge), followed by a separable Gaussian blur (PatchCore uses
 * sigma 4 px). The overlay colours each pixel by value / threshold on a blue → green → yellow →
 * red scale (0 → blue, 1.0, the flagging line → yellow, 2.0 and above → red) and blends it over
 * the frame with an opacity that grows with the value, so normal regions keep the frame visible. */
#ifndef INSPECTD_HEATMAP_H
#define INSPECTD_HEATMAP_H

#include <stddef.h>
#include <stdint.h>

/* map (H, W) = grid (gh, gw) upsampled, then blurred with sigma pixels (0: no blur). Returns 0,
 * or -1 when out of memory. */
int heatmap_upsample(const float *grid, int gh, int gw, float *map, int H, int W, float sigma);

/* out (H, W, 3) = the colour-mapped map (H, W) blended over the frame rgb (H, W, 3), with values
 * scaled by 1 / threshold (threshold > 0). out may be rgb. */
void heatmap_overlay(const uint8_t *rgb, const float *map, int H, int W, float threshold,
                     uint8_t *out);

/* The heatmap of a scored frame as a JPEG: the patch grid (gh, gw) upsampled to the frame's size,
 * smoothed (sigma 4 px at 256 px, scaled with the frame), coloured on the threshold's scale and
 * laid over the frame (encoded JPEG/PNG bytes). *jpeg is malloc'ed. Returns 0, or -1 with the
 * reason in err. */
int heatmap_jpeg(const void *frame, size_t len, const float *grid, int gh, int gw, float threshold,
                 uint8_t **jpeg, size_t *jpeg_len, char *err, size_t errsz);

/* A grid of patch scores (gh, gw) that covers the rectangle rect (x, y, w, h) of a frame: a ROI
 * shrunk to the model's input, or one tile of it. */
struct heatmap_part {
    const float *grid;
    int gh, gw;
    int rect[4];
};

/* The parts laid back onto one grid over the whole width × height frame, at cells of about
 * cell_w × cell_h frame pixels (at most HEATMAP_MAX_GRID a side): each cell takes the largest value
 * of the parts that cover its centre (where tiles overlap), 0 where none does (outside the ROI).
 * Sets *GH, *GW; out holds HEATMAP_MAX_GRID² floats. */
#define HEATMAP_MAX_GRID 256
void heatmap_frame_grid(const struct heatmap_part *parts, int n, int width, int height,
                        double cell_w, double cell_h, float *out, int *GH, int *GW);

/* The largest value of map inside the box [x0, x1) x [y0, y1) and outside it: does a map peak on
 * a known defect? */
void heatmap_peak(const float *map, int H, int W, int x0, int y0, int x1, int y1, float *inside,
                  float *outside);

#endif
