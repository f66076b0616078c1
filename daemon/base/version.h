/* version.h — the one place the version string lives. */
#ifndef INSPECTD_VERSION_H
#define INSPECTD_VERSION_H
#define INSPECTD_VERSION "0.1.0"
#endif
