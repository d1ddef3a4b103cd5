/* Host-side check of hilwire.c: the firmware's CRCs, framing writer and reader driven line by line from stdin.
 *
 * Commands (hex without spaces; one reply line each, "dec" ends its frame lines with "."):
 *   crc HEX                 -> "CCITT MODBUS" (4 hex digits each)
 *   enc TYPE SEQ T_US HEX   -> the framed bytes in hex (decimal TYPE, SEQ, T_US)
 *   dec HEX                 -> "F TYPE SEQ T_US HEX" per good frame, "R REASON" per rejected one, then "."
 *   rst                     -> "." (the reader back to its power-on state)
 * The reader keeps its state across "dec" lines, so a test can split a stream anywhere.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hilwire.h"

static uint8_t out[2 * HW_MAX_CONTENT + 4];
static size_t out_n;

static void put(uint8_t b)
{
    if (out_n < sizeof out)
        out[out_n++] = b;
}

static size_t unhex(const char *s, uint8_t *buf, size_t cap)
{
    size_t n = 0;
    while (s[0] && s[1] && n < cap) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            break;
        buf[n++] = (uint8_t)v;
        s += 2;
    }
    return n;
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

int main(void)
{
    static char line[16384];
    static uint8_t buf[8192], payload[HW_MAX_PAYLOAD];
    hw_reader r;
    hw_reader_init(&r);
    while (fgets(line, sizeof line, stdin)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!strncmp(line, "crc ", 4)) {
            size_t n = unhex(line + 4, buf, sizeof buf);
            uint16_t a = 0xFFFF, m = 0xFFFF;
            for (size_t i = 0; i < n; i++) {
                a = hw_crc_ccitt_update(a, buf[i]);
                m = hw_crc_modbus_update(m, buf[i]);
            }
            printf("%04x %04x\n", a, m);
        } else if (!strncmp(line, "enc ", 4)) {
            unsigned type, seq;
            uint64_t t_us;
            int used = 0;
            if (sscanf(line + 4, "%u %u %" SCNu64 " %n", &type, &seq, &t_us, &used) < 3) {
                printf("error\n");
                fflush(stdout);
                continue;
            }
            size_t n = unhex(line + 4 + used, buf, HW_MAX_PAYLOAD);
            hw_writer w;
            out_n = 0;
            hw_begin(&w, put, (uint8_t)type, (uint16_t)seq, t_us);
            hw_bytes(&w, buf, (uint16_t)n);
            hw_end(&w);
            print_hex(out, out_n);
            printf("\n");
        } else if (!strncmp(line, "dec ", 4)) {
            size_t n = unhex(line + 4, buf, sizeof buf);
            for (size_t i = 0; i < n; i++) {
                switch (hw_feed(&r, buf[i])) {
                case HW_EV_PAYLOAD:
                    payload[r.pos] = r.byte;
                    break;
                case HW_EV_FRAME:
                    printf("F %u %u %" PRIu64 " ", r.type, r.seq, r.t_us);
                    print_hex(payload, r.len);
                    printf("\n");
                    break;
                case HW_EV_REJECT:
                    printf("R %u\n", r.reject);
                    break;
                default:
                    break;
                }
            }
            printf(".\n");
        } else if (!strcmp(line, "rst")) {
            hw_reader_init(&r);
            printf(".\n");
        } else {
            printf("error\n");
        }
        fflush(stdout);
    }
    return 0;
}
