/* array.h — the number of elements of an array (not of a pointer: the compiler cannot tell). */
#ifndef INSPECTD_ARRAY_H
#define INSPECTD_ARRAY_H

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
