/* camera_list.h — one record per camera a driver can see, for `inspectd cameras`.
 *
 * A driver's list function calls back once per camera and returns how many it saw, or -1 with a
 * reason in err when the driver itself could not look (the callback is then not called). */
#ifndef INSPECTD_CAMERA_LIST_H
#define INSPECTD_CAMERA_LIST_H

struct camera_info {
    const char *driver; /* "aravis", "libcamera" */
    char id[128];       /* the value for `device =` in a [camera.NAME] section */
    char vendor[64];
    char model[64];
    char serial[64];
    char address[64];  /* IP address, USB bus path, …; "" when the driver has none */
    char formats[256]; /* pixel formats inspectd can take from it, comma-separated */
    char note[128];    /* why formats is empty (e.g. "in use by another program"), else "" */
};

typedef void (*camera_list_fn)(const struct camera_info *info, void *ctx);

#endif
