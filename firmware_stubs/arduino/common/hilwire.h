/* hil wire formats shared by the boards (docs/PROTOCOLS.md section 1): CRCs, framing writer and streaming reader.
 *
 * Plain C99 with no AVR dependency, so the host test (test_host.c) compiles this same file with the host's cc
 * and checks it against the Python framing byte for byte.
 */
#ifndef HILWIRE_H
#define HILWIRE_H

#include <stdint.h>

#define HW_FLAG 0x7Eu
#define HW_ESCAPE 0x7Du
#define HW_ESCAPE_XOR 0x20u
#define HW_HEADER_LEN 11u /* type u8, seq u16, t_us u64 */
#define HW_CRC_LEN 2u
#define HW_MAX_PAYLOAD 1024u
#define HW_MIN_CONTENT (HW_HEADER_LEN + HW_CRC_LEN)
#define HW_MAX_CONTENT (HW_MIN_CONTENT + HW_MAX_PAYLOAD)

/* frame types */
#define HW_ASTERIX 0x01u
#define HW_STIMULUS 0x02u
#define HW_SENSOR_CONFIG 0x03u
#define HW_TIME_SYNC_REQ 0x10u
#define HW_TIME_SYNC_RESP 0x11u
#define HW_IDENT_REQ 0x20u
#define HW_IDENT_RESP 0x21u
#define HW_STATUS 0x30u
#define HW_LOG 0x7Fu

/* CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, not reflected): the framing CRC */
uint16_t hw_crc_ccitt_update(uint16_t crc, uint8_t byte);
/* CRC-16/MODBUS (reflected poly 0xA001, init 0xFFFF): the Modbus RTU CRC, sent low byte first */
uint16_t hw_crc_modbus_update(uint16_t crc, uint8_t byte);

/* ---- writer: streams one frame through put() with stuffing and the CRC, no frame buffer ---- */
typedef void (*hw_put_fn)(uint8_t byte);

typedef struct {
    hw_put_fn put;
    uint16_t crc;
} hw_writer;

void hw_begin(hw_writer *w, hw_put_fn put, uint8_t type, uint16_t seq, uint64_t t_us);
void hw_byte(hw_writer *w, uint8_t byte);
void hw_bytes(hw_writer *w, const void *data, uint16_t n);
void hw_u16le(hw_writer *w, uint16_t v);
void hw_u32le(hw_writer *w, uint32_t v);
void hw_u64le(hw_writer *w, uint64_t v);
void hw_end(hw_writer *w);

/* ---- reader: byte in, event out ----
 * A content byte is only known not to be CRC once two more bytes follow, so payload bytes come out two bytes
 * late (HW_EV_PAYLOAD: r->pos is the payload index, r->byte the value) and are provisional until HW_EV_FRAME.
 */
enum {
    HW_EV_NONE = 0,
    HW_EV_HEADER,  /* the 11 header bytes are in (r->type, r->seq, r->t_us); payload bytes follow */
    HW_EV_PAYLOAD, /* one payload byte */
    HW_EV_FRAME,   /* a frame closed with a good CRC; r->len is its payload length */
    HW_EV_REJECT,  /* a frame closed bad; r->reject says why */
};

enum {
    HW_REJ_LENGTH = 1, /* shorter than HW_MIN_CONTENT or longer than HW_MAX_CONTENT */
    HW_REJ_CRC,
    HW_REJ_ESCAPE, /* an escape right before a flag */
};

typedef struct {
    uint8_t in_frame;
    uint8_t escaped;
    uint8_t overlong;
    uint8_t lag[2];   /* the last two content bytes: the CRC if the next byte is a flag */
    uint16_t n;       /* content bytes received in this frame */
    uint16_t crc;     /* over content[0 .. n-3] */
    uint8_t hdr[HW_HEADER_LEN];
    /* results */
    uint8_t type;
    uint16_t seq;
    uint64_t t_us;
    uint16_t pos;
    uint8_t byte;
    uint16_t len;
    uint8_t reject;
} hw_reader;

void hw_reader_init(hw_reader *r);
uint8_t hw_feed(hw_reader *r, uint8_t byte);

/* little-endian loads for payload fields */
uint16_t hw_le16(const uint8_t *p);
uint32_t hw_le32(const uint8_t *p);
float hw_lef32(const uint8_t *p);

#endif /* HILWIRE_H */
