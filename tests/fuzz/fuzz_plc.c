/* fuzz_plc.c — libFuzzer target: what the Modbus server makes of a request before libmodbus
 * answers it: the write it asks for (function, first register, count) and whether the register
 * map takes it. The input is a Modbus TCP request as received (the 7-byte MBAP header, then the
 * PDU); the first byte's low bit says whether the map is writable.
 *
 * Invariants checked: a write is only allowed inside the writable registers (20-21, and each
 * camera's next part id block and recipe select), never with a read-only map, never for zero
 * registers or past the map's end; a read is never taken for a write. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "line/plc.h"

#define MBAP 7

static bool writable_register(int r)
{
    if (r == PLC_RESET_FAULT || r == PLC_PAUSE) return true;
    if (r < PLC_CAMERA_BASE || r >= PLC_REGISTERS) return false;
    int off = (r - PLC_CAMERA_BASE) % PLC_CAMERA_SPAN;
    return off == PLC_RECIPE_SET || (off >= PLC_NEXT_PART && off < PLC_NEXT_PART + PLC_PART_REGS);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 300) return 0;
    bool writable = data[0] & 1;
    const uint8_t *q = data + 1;
    int len = (int)size - 1, addr = -1, n = -1;
    int w = line_plc_write_range(q, MBAP, len, &addr, &n);
    if (w == 1) {
        if (len < MBAP + 5 || addr < 0 || addr > 65535 || n < 0 || n > 65535) abort();
        int fc = q[MBAP];
        if (fc != 0x06 && fc != 0x10) abort();
        if (line_plc_check_write(writable, addr, n) == 0) {
            if (!writable || n < 1) abort();
            for (int r = addr; r < addr + n; r++)
                if (!writable_register(r)) abort();
        }
    } else if (w == 0 && len >= MBAP + 1) {
        int fc = q[MBAP];
        if (fc == 0x06 || fc == 0x10) {
            if (len >= MBAP + 5) abort();
        }
    }
    return 0;
}
