-- 0004_retention.sql — what disk retention adds. When the database reaches its size limit (or its
-- filesystem its free-space floor) and only protected frames are left to delete (flagged frames
-- awaiting review, confirmed defects within their retention), new frames are stored without their
-- image: the row keeps its metadata (and gets its result), image is the empty blob, and
-- image_missing says why. NULL: the image is stored.
ALTER TABLE frames ADD COLUMN image_missing TEXT
    CHECK (image_missing IS NULL OR (length(image) = 0 AND length(image_missing) > 0));
