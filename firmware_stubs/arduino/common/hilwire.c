/* hil wire formats shared by the boards: CRCs, the framing writer and the streaming frame reader. */
#include "hilwire.h"

#include <string.h>

uint16_t hw_crc_ccitt_update(uint16_t crc, uint8_t byte)
{
    /* bitwise, not a 512-byte table: ~100 cycles a byte is far below a UART byte time (1400 cycles) */
    crc ^= (uint16_t)byte << 8;
    for (uint8_t i = 0; i < 8; i++)
        crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
    return crc;
}

uint16_t hw_crc_modbus_update(uint16_t crc, uint8_t byte)
{
    crc ^= byte;
    for (uint8_t i = 0; i < 8; i++)
        crc = (crc & 1u) ? (uint16_t)((crc >> 1) ^ 0xA001u) : (uint16_t)(crc >> 1);
    return crc;
}

static void put_stuffed(hw_writer *w, uint8_t byte)
{
    if (byte == HW_FLAG || byte == HW_ESCAPE) {
        w->put(HW_ESCAPE);
        w->put(byte ^ HW_ESCAPE_XOR);
    } else {
        w->put(byte);
    }
}

void hw_byte(hw_writer *w, uint8_t byte)
{
    w->crc = hw_crc_ccitt_update(w->crc, byte);
    put_stuffed(w, byte);
}

void hw_bytes(hw_writer *w, const void *data, uint16_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    while (n--)
        hw_byte(w, *p++);
}

void hw_u16le(hw_writer *w, uint16_t v)
{
    hw_byte(w, (uint8_t)v);
    hw_byte(w, (uint8_t)(v >> 8));
}

void hw_u32le(hw_writer *w, uint32_t v)
{
    hw_u16le(w, (uint16_t)v);
    hw_u16le(w, (uint16_t)(v >> 16));
}

void hw_u64le(hw_writer *w, uint64_t v)
{
    hw_u32le(w, (uint32_t)v);
    hw_u32le(w, (uint32_t)(v >> 32));
}

void hw_begin(hw_writer *w, hw_put_fn put, uint8_t type, uint16_t seq, uint64_t t_us)
{
    w->put = put;
    w->crc = 0xFFFFu;
    put(HW_FLAG);
    hw_byte(w, type);
    hw_u16le(w, seq);
    hw_u64le(w, t_us);
}

void hw_end(hw_writer *w)
{
    uint16_t crc = w->crc;
    put_stuffed(w, (uint8_t)(crc >> 8)); /* the CRC goes big-endian, the one exception in our framing */
    put_stuffed(w, (uint8_t)crc);
    w->put(HW_FLAG);
}

void hw_reader_init(hw_reader *r)
{
    memset(r, 0, sizeof *r);
}

static void start_frame(hw_reader *r)
{
    r->in_frame = 1;
    r->escaped = 0;
    r->overlong = 0;
    r->n = 0;
    r->crc = 0xFFFFu;
}

static uint8_t close_frame(hw_reader *r)
{
    if (r->overlong)
        return HW_EV_NONE; /* already rejected when it grew too long */
    if (r->escaped) {
        r->reject = HW_REJ_ESCAPE;
        return HW_EV_REJECT;
    }
    if (r->n < HW_MIN_CONTENT) {
        r->reject = HW_REJ_LENGTH;
        return HW_EV_REJECT;
    }
    if (r->crc != (uint16_t)(((uint16_t)r->lag[0] << 8) | r->lag[1])) {
        r->reject = HW_REJ_CRC;
        return HW_EV_REJECT;
    }
    r->len = (uint16_t)(r->n - HW_MIN_CONTENT);
    return HW_EV_FRAME;
}

uint8_t hw_feed(hw_reader *r, uint8_t byte)
{
    if (byte == HW_FLAG) {
        uint8_t ev = HW_EV_NONE;
        /* back-to-back flags (an empty frame) are just a frame boundary, as on the host */
        if (r->in_frame && (r->n || r->escaped || r->overlong))
            ev = close_frame(r);
        start_frame(r);
        return ev;
    }
    if (!r->in_frame || r->overlong)
        return HW_EV_NONE;
    if (r->escaped) {
        byte ^= HW_ESCAPE_XOR;
        r->escaped = 0;
    } else if (byte == HW_ESCAPE) {
        r->escaped = 1;
        return HW_EV_NONE;
    }
    if (r->n >= HW_MAX_CONTENT) {
        r->overlong = 1;
        r->reject = HW_REJ_LENGTH;
        return HW_EV_REJECT;
    }
    uint16_t n = r->n++;
    if (n < 2) {
        r->lag[n] = byte;
        return HW_EV_NONE;
    }
    /* content byte n-2 is now known not to be part of the CRC */
    uint8_t b = r->lag[0];
    r->lag[0] = r->lag[1];
    r->lag[1] = byte;
    r->crc = hw_crc_ccitt_update(r->crc, b);
    uint16_t i = (uint16_t)(n - 2);
    if (i < HW_HEADER_LEN) {
        r->hdr[i] = b;
        if (i == HW_HEADER_LEN - 1) {
            r->type = r->hdr[0];
            r->seq = hw_le16(r->hdr + 1);
            r->t_us = (uint64_t)hw_le32(r->hdr + 3) | ((uint64_t)hw_le32(r->hdr + 7) << 32);
            return HW_EV_HEADER;
        }
        return HW_EV_NONE;
    }
    r->pos = (uint16_t)(i - HW_HEADER_LEN);
    r->byte = b;
    return HW_EV_PAYLOAD;
}

uint16_t hw_le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

uint32_t hw_le32(const uint8_t *p)
{
    return (uint32_t)hw_le16(p) | ((uint32_t)hw_le16(p + 2) << 16);
}

float hw_lef32(const uint8_t *p)
{
    /* both the AVR and x86 hosts are little-endian IEEE-754 single precision */
    uint32_t u = hw_le32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
