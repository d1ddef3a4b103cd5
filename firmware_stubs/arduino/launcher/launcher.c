/* Launcher emulator for the ATmega328P: a Modbus RTU slave over the register map with the SAFE/ARM/fire state machine.
 *
 * docs/PROTOCOLS.md section 4 and firmware_stubs/common/hil_registers.h are the contract. A request ends after
 * 3.5 character times of silence (the Modbus spec's fixed 1750 us above 19200 baud); the reply follows at once.
 * Function codes 3, 4, 6 and 16 are served; every other one answers exception 01. Broadcast (id 0) writes are
 * applied without a reply. The AVR's own watchdog resets a hung board, and reset is SAFE.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <string.h>

#include "../../common/hil_registers.h"
#include "board.h"
#include "hilwire.h"

#ifndef HIL_DEVICE_ID
#define HIL_DEVICE_ID HIL_DEFAULT_DEVICE_ID
#endif
#define FW_NAME "hil-launcher-avr"
#define MAX_READ_COUNT 125u
#define MAX_WRITE_COUNT 123u
#define FRAME_MAX 256u

/* Inter-frame silence: 3.5 characters of 11 bits, but a fixed 1750 us above 19200 baud (Modbus over serial
 * line V1.02, 2.5.1.1), which is what a spec-following master expects of us at 115200. */
#if HIL_BAUD > 19200UL
#define T35_US 1750UL
#else
#define T35_US (38500000UL / HIL_BAUD) /* 3.5 x 11 bits */
#endif
#define T35_TICKS ((uint16_t)(T35_US * (F_CPU / 8000000UL)))

static uint8_t rx_buf[FRAME_MAX];
static volatile uint16_t rx_len;
static volatile uint8_t rx_ready; /* a whole request waits in rx_buf */
static volatile uint8_t rx_bad;   /* framing error or too long: the request is dropped */
static volatile uint16_t rx_overruns;

/* the register map's state */
static uint16_t holding[HIL_HR_COUNT];
static uint8_t state = HIL_STATE_SAFE;
static uint16_t rounds = HIL_ROUNDS_DEFAULT;
static uint16_t last_reject, reject_count, fault_code;
static uint16_t last_cmd_seq, bad_check_count, watchdog_trips;
static uint8_t watchdog_tripped;
static uint64_t last_feed_us, reload_until_us, last_cmd_us;

/* The launch record: LAUNCH_COUNT, LAST_FIRE_SEQ, LAST_FIRE_TRACK, the aim as written (LAST_FIRE_AZ_CDEG..TGO_CS)
 * and LAST_LAUNCH_T_US, all of the last accepted fire. It is also the bench's view of a launch: every launch
 * toggles the launch discrete (PB5, Arduino D13, the Uno's LED "L"), and a test rig watching that line reads this
 * record by its ELF symbol at the edge (firmware_stubs/sim/hil_simavr.c), so a launch whose reply is lost is
 * still seen. Global and of fixed layout (AVR: little-endian, no padding, 22 bytes): change it with the harness. */
struct hil_launch_record {
    uint16_t count;
    uint16_t seq;
    uint16_t track;
    uint16_t aim[4]; /* az cdeg, el cdeg, range m, tgo cs */
    uint64_t t_us;
};
struct hil_launch_record hil_launch_record;
#define LAUNCH_DISCRETE_BIT PB5

/* the reply being sent */
static uint16_t tx_crc;

ISR(USART_RX_vect)
{
    uint8_t status = UCSR0A;
    uint8_t byte = UDR0;
    if (rx_ready) { /* the previous request is still being answered: a master never sends now */
        rx_overruns++;
        return;
    }
    if (status & (_BV(FE0) | _BV(DOR0)))
        rx_bad = 1;
    uint16_t n = rx_len;
    if (n < FRAME_MAX)
        rx_buf[n] = byte;
    else
        rx_bad = 1;
    rx_len = n + 1u;
    /* restart the silence timer: the request is whole when it fires. A match flagged before this byte is not
     * cleared by writing TIFR1 but told apart by the count (below): simavr 1.6 clears every raised Timer1 flag
     * on any TIFR1 write, a pending overflow too, and the board clock would lose 32.768 ms. */
    OCR1B = (uint16_t)(TCNT1 + T35_TICKS);
    TIMSK1 |= _BV(OCIE1B);
}

ISR(TIMER1_COMPB_vect)
{
    if ((int16_t)(TCNT1 - OCR1B) < 0)
        return; /* a match left from an earlier frame: the silence has only begun */
    TIMSK1 &= (uint8_t)~_BV(OCIE1B);
    rx_ready = 1;
    board_wake = 1;
}

/* ---- the safety state machine ---- */

static void tick(uint64_t now)
{
    if (state == HIL_STATE_ARMED && now - last_feed_us > (uint64_t)holding[HIL_HR_WATCHDOG_MS] * 1000u) {
        state = HIL_STATE_SAFE;
        watchdog_tripped = 1;
        watchdog_trips++;
    }
}

static uint8_t reloading(uint64_t now)
{
    return now < reload_until_us;
}

static uint16_t status_bits(uint64_t now)
{
    uint16_t bits = 0;
    uint8_t armed = state == HIL_STATE_ARMED;
    if (armed)
        bits |= HIL_STATUS_ARMED;
    if (armed && !reloading(now) && rounds > 0)
        bits |= HIL_STATUS_READY;
    if (reloading(now))
        bits |= HIL_STATUS_RELOADING;
    if (watchdog_tripped)
        bits |= HIL_STATUS_WATCHDOG_TRIPPED;
    if (state == HIL_STATE_FAULT)
        bits |= HIL_STATUS_FAULT;
    return bits;
}

static void reject(uint16_t reason)
{
    last_reject = reason;
    reject_count++;
}

static void arm_key(uint16_t value, uint64_t now)
{
    if (value == HIL_ARM_KEY) {
        if (state == HIL_STATE_FAULT) {
            reject(HIL_REJECT_FAULT);
        } else if (state == HIL_STATE_SAFE) {
            state = HIL_STATE_ARMED;
            watchdog_tripped = 0;
            last_feed_us = now; /* arming starts the watchdog period afresh */
        }
        return;
    }
    if (value != 0)
        reject(HIL_REJECT_BAD_KEY);
    if (state == HIL_STATE_ARMED)
        state = HIL_STATE_SAFE;
}

static void fire(uint16_t seq, uint64_t now)
{
    last_cmd_us = now;
    last_cmd_seq = seq;
    uint16_t why;
    if (seq == 0)
        why = HIL_REJECT_ZERO_SEQ;
    else if (seq == hil_launch_record.seq)
        why = HIL_REJECT_DUPLICATE_SEQ; /* a retried command never fires twice */
    else if (state == HIL_STATE_FAULT)
        why = HIL_REJECT_FAULT;
    else if (state != HIL_STATE_ARMED)
        why = HIL_REJECT_NOT_ARMED;
    else if (reloading(now))
        why = HIL_REJECT_RELOADING;
    else if (rounds == 0)
        why = HIL_REJECT_NO_ROUNDS;
    else {
        rounds--;
        reload_until_us = now + (uint64_t)holding[HIL_HR_RELOAD_MS] * 1000u;
        hil_launch_record.seq = seq;
        hil_launch_record.track = holding[HIL_HR_FIRE_TRACK];
        memcpy(hil_launch_record.aim, &holding[HIL_HR_FIRE_AZ_CDEG], sizeof hil_launch_record.aim);
        hil_launch_record.t_us = now;
        hil_launch_record.count++;
        /* the whole record is in memory before the edge a bench reads it at */
        __asm__ __volatile__("" ::: "memory");
        PORTB ^= _BV(LAUNCH_DISCRETE_BIT);
        return;
    }
    reject(why);
}

static uint8_t in_limits(uint16_t reg, uint16_t v)
{
    switch (reg) {
    case HIL_HR_WATCHDOG_MS:
        return v >= HIL_WATCHDOG_MS_MIN && v <= HIL_WATCHDOG_MS_MAX;
    case HIL_HR_FIRE_AZ_CDEG:
        return v <= HIL_FIRE_AZ_CDEG_MAX;
    case HIL_HR_FIRE_EL_CDEG:
        return v <= HIL_FIRE_EL_CDEG_MAX;
    case HIL_HR_RELOAD_MS:
        return v <= HIL_RELOAD_MS_MAX; /* HIL_RELOAD_MS_MIN is 0 */
    default:
        return 1;
    }
}

static void write_one(uint16_t reg, uint16_t value, uint64_t now)
{
    switch (reg) {
    case HIL_HR_HEARTBEAT:
        last_feed_us = now;
        break;
    case HIL_HR_ARM_KEY:
        arm_key(value, now);
        break;
    case HIL_HR_ROUNDS_LOADED:
        if (state != HIL_STATE_SAFE) {
            reject(HIL_REJECT_NOT_SAFE);
            return;
        }
        rounds = value;
        break;
    case HIL_HR_FIRE_CHECK: /* the last register of a whole, checked fire block */
        holding[reg] = value;
        fire(holding[HIL_HR_FIRE_SEQ], now);
        return;
    default:
        break;
    }
    holding[reg] = value;
}

static uint16_t be16(const uint8_t *p)
{
    return (uint16_t)(((uint16_t)p[0] << 8) | p[1]);
}

/* A fire command that is not one whole block with a good check: refused, counted, no register changes */
static void refuse_command(uint16_t why, uint64_t now)
{
    last_cmd_us = now;
    bad_check_count++;
    reject(why);
}

/* An FC 6/16 write of count values at values (big-endian): checked whole, then applied in address order (a
 * fire block ends with FIRE_CHECK, which fires). Returns 0 or the exception code. */
static uint8_t write_registers(uint16_t address, uint16_t count, const uint8_t *values, uint64_t now)
{
    if ((uint32_t)address + count > HIL_HR_COUNT)
        return HIL_EX_ILLEGAL_DATA_ADDRESS;
    if (address <= HIL_HR_FIRE_CHECK && address + count > HIL_HR_FIRE_SEQ) {
        /* integrity before ranges, so that every corrupted fire is counted whatever it hit */
        tick(now);
        if (address != HIL_FIRE_BLOCK || count != HIL_FIRE_BLOCK_REGS) {
            refuse_command(HIL_REJECT_PARTIAL_FIRE, now);
            return 0;
        }
        uint16_t crc = 0xFFFFu;
        for (uint8_t i = 0; i < 2u * (HIL_FIRE_BLOCK_REGS - 1u); i++)
            crc = hw_crc_modbus_update(crc, values[i]);
        if (crc != be16(values + 2u * (HIL_FIRE_BLOCK_REGS - 1u))) {
            refuse_command(HIL_REJECT_BAD_CHECK, now);
            return 0;
        }
    }
    for (uint16_t i = 0; i < count; i++)
        if (!in_limits(address + i, be16(values + 2u * i)))
            return HIL_EX_ILLEGAL_DATA_VALUE;
    tick(now);
    for (uint16_t i = 0; i < count; i++)
        write_one(address + i, be16(values + 2u * i), now);
    return 0;
}

static uint16_t ascii_reg(const char *text, uint8_t size, uint8_t index)
{
    /* two bytes a register, first in the high half, NUL padded */
    uint8_t len = (uint8_t)strlen(text);
    uint8_t i = (uint8_t)(2u * index);
    uint8_t hi = (i < len && i < size) ? (uint8_t)text[i] : 0;
    uint8_t lo = (i + 1u < len && i + 1u < size) ? (uint8_t)text[i + 1u] : 0;
    return (uint16_t)(((uint16_t)hi << 8) | lo);
}

static uint16_t u64_reg(uint64_t v, uint8_t index)
{
    return (uint16_t)(v >> (16u * (3u - index))); /* high word first */
}

static uint16_t input_register(uint16_t reg, uint64_t now)
{
    if (reg >= HIL_IR_BUILD_ID)
        return ascii_reg(HIL_BUILD_ID, 2u * HIL_BUILD_ID_REGS, (uint8_t)(reg - HIL_IR_BUILD_ID));
    if (reg >= HIL_IR_FW_NAME)
        return ascii_reg(FW_NAME, 2u * HIL_FW_NAME_REGS, (uint8_t)(reg - HIL_IR_FW_NAME));
    if (reg >= HIL_IR_LAST_FIRE_AZ_CDEG)
        return hil_launch_record.aim[reg - HIL_IR_LAST_FIRE_AZ_CDEG];
    if (reg == HIL_IR_LAST_CMD_SEQ)
        return last_cmd_seq;
    if (reg == HIL_IR_BAD_CHECK_COUNT)
        return bad_check_count;
    if (reg == HIL_IR_WATCHDOG_TRIPS)
        return watchdog_trips;
    if (reg >= HIL_IR_LAST_CMD_T_US)
        return u64_reg(last_cmd_us, (uint8_t)(reg - HIL_IR_LAST_CMD_T_US));
    if (reg >= HIL_IR_LAST_LAUNCH_T_US)
        return u64_reg(hil_launch_record.t_us, (uint8_t)(reg - HIL_IR_LAST_LAUNCH_T_US));
    if (reg >= HIL_IR_BOARD_TIME_US)
        return u64_reg(now, (uint8_t)(reg - HIL_IR_BOARD_TIME_US));
    switch (reg) {
    case HIL_IR_IDENT_MAGIC:
        return HIL_IDENT_MAGIC;
    case HIL_IR_REGMAP_VERSION:
        return HIL_REGMAP_VERSION;
    case HIL_IR_FW_VERSION:
        return (HIL_FW_VERSION_MAJOR << 8) | HIL_FW_VERSION_MINOR;
    case HIL_IR_STATE:
        return state;
    case HIL_IR_STATUS:
        return status_bits(now);
    case HIL_IR_ROUNDS_REMAINING:
        return rounds;
    case HIL_IR_LAST_FIRE_SEQ:
        return hil_launch_record.seq;
    case HIL_IR_LAUNCH_COUNT:
        return hil_launch_record.count;
    case HIL_IR_LAST_FIRE_TRACK:
        return hil_launch_record.track;
    case HIL_IR_LAST_REJECT:
        return last_reject;
    case HIL_IR_REJECT_COUNT:
        return reject_count;
    default: /* HIL_IR_FAULT_CODE */
        return fault_code;
    }
}

/* ---- Modbus RTU ---- */

static void reply_byte(uint8_t b)
{
    tx_crc = hw_crc_modbus_update(tx_crc, b);
    board_putc(b);
}

static void reply_u16(uint16_t v)
{
    reply_byte((uint8_t)(v >> 8));
    reply_byte((uint8_t)v);
}

static void reply_begin(uint8_t function_code)
{
    tx_crc = 0xFFFFu;
    reply_byte(HIL_DEVICE_ID);
    reply_byte(function_code);
}

static void reply_end(void)
{
    uint16_t crc = tx_crc;
    board_putc((uint8_t)crc); /* the Modbus CRC goes low byte first */
    board_putc((uint8_t)(crc >> 8));
}

static void reply_exception(uint8_t function_code, uint8_t code)
{
    reply_begin((uint8_t)((function_code & 0x7Fu) | 0x80u));
    reply_byte(code);
    reply_end();
}

/* A write's answer: its exception, or the request's address and value (0x06) or address and count (0x10) echoed */
static void reply_write(uint8_t function_code, uint8_t ex, const uint8_t *pdu)
{
    if (ex) {
        reply_exception(function_code, ex);
        return;
    }
    reply_begin(function_code);
    for (uint8_t i = 1; i < 5; i++)
        reply_byte(pdu[i]);
    reply_end();
}

static void serve(const uint8_t *adu, uint16_t n)
{
    if (n < 4)
        return;
    uint16_t crc = 0xFFFFu;
    for (uint16_t i = 0; i < n - 2u; i++)
        crc = hw_crc_modbus_update(crc, adu[i]);
    if (crc != (uint16_t)(adu[n - 2u] | ((uint16_t)adu[n - 1u] << 8)))
        return; /* a slave stays silent on a corrupt frame; the master times out and retries */
    uint8_t unit = adu[0];
    if (unit != HIL_DEVICE_ID && unit != 0)
        return;
    uint8_t broadcast = unit == 0;
    const uint8_t *pdu = adu + 1;
    uint16_t len = (uint16_t)(n - 3u);
    uint8_t fc = pdu[0];
    uint64_t now = board_micros();
    uint8_t ex = 0;

    if (fc == HIL_FC_READ_HOLDING || fc == HIL_FC_READ_INPUT) {
        if (broadcast)
            return;
        uint16_t address = be16(pdu + 1), count = be16(pdu + 3);
        uint16_t size = fc == HIL_FC_READ_HOLDING ? HIL_HR_COUNT : HIL_IR_COUNT;
        if (len != 5 || count < 1 || count > MAX_READ_COUNT)
            ex = HIL_EX_ILLEGAL_DATA_VALUE;
        else if ((uint32_t)address + count > size)
            ex = HIL_EX_ILLEGAL_DATA_ADDRESS;
        if (ex) {
            reply_exception(fc, ex);
            return;
        }
        tick(now);
        reply_begin(fc);
        reply_byte((uint8_t)(2u * count));
        for (uint16_t i = 0; i < count; i++)
            reply_u16(fc == HIL_FC_READ_HOLDING ? holding[address + i] : input_register(address + i, now));
        reply_end();
        return;
    }
    if (fc == HIL_FC_WRITE_SINGLE) {
        if (len != 5)
            ex = HIL_EX_ILLEGAL_DATA_VALUE;
        else
            ex = write_registers(be16(pdu + 1), 1, pdu + 3, now);
        if (!broadcast)
            reply_write(fc, ex, pdu);
        return;
    }
    if (fc == HIL_FC_WRITE_MULTIPLE) {
        uint16_t count = len >= 6 ? be16(pdu + 3) : 0;
        if (len < 6 || count < 1 || count > MAX_WRITE_COUNT || pdu[5] != 2u * count || len != 6u + 2u * count)
            ex = HIL_EX_ILLEGAL_DATA_VALUE;
        else
            ex = write_registers(be16(pdu + 1), count, pdu + 6, now);
        if (!broadcast)
            reply_write(fc, ex, pdu);
        return;
    }
    if (!broadcast)
        reply_exception(fc, HIL_EX_ILLEGAL_FUNCTION);
}

int main(void)
{
    holding[HIL_HR_WATCHDOG_MS] = HIL_WATCHDOG_MS_DEFAULT;
    holding[HIL_HR_RELOAD_MS] = HIL_RELOAD_MS_DEFAULT;
    holding[HIL_HR_ROUNDS_LOADED] = HIL_ROUNDS_DEFAULT;
    DDRB |= _BV(LAUNCH_DISCRETE_BIT);
    board_init();
    wdt_enable(WDTO_250MS);
    for (;;) {
        wdt_reset();
        tick(board_micros());
        if (rx_ready) {
            if (!rx_bad && rx_len <= FRAME_MAX)
                serve(rx_buf, rx_len);
            cli();
            rx_len = 0;
            rx_bad = 0;
            rx_ready = 0;
            sei();
        }
        board_idle();
    }
}
