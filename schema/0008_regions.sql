-- 0008_regions.sql — regions: the part of a frame that is inspected ([camera.X] roi and mask).
-- Every frame records the region its camera had when it was captured (frames.region_id; NULL:
-- the whole frame), so training, scoring and heatmaps see it through that region from the next
-- frame after a reload that changes it, and the stored image stays whole. A region row holds the
-- ROI as "x,y,w,h" (NULL: the whole frame) and the mask's bytes as read from its file (NULL:
-- none), so a mask file edited later does not change how earlier frames were seen.

CREATE TABLE regions (
    id         INTEGER PRIMARY KEY,
    roi        TEXT,              -- x,y,w,h in pixels of the frame as the driver delivers it
    mask       BLOB,              -- PNG (or JPEG): white = inspect, black = ignore
    mask_file  TEXT,              -- the file it was read from, for people
    created_at INTEGER NOT NULL
);

ALTER TABLE frames ADD COLUMN region_id INTEGER REFERENCES regions (id);
