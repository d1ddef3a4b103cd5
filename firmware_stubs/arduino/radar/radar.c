/* Radar emulator for the ATmega328P: truth in (STIMULUS, SENSOR_CONFIG), a sweeping beam, ASTERIX plots out.
 *
 * docs/PROTOCOLS.md sections 1-2 are the contract. The beam turns clockwise from north_offset at the moment a
 * SENSOR_CONFIG arrives; each target's next beam crossing is predicted from its constant-velocity truth, and at
 * that instant it is detected with probability Pd and polar Gaussian noise (xorshift32 + Box-Muller). Clutter is
 * a Poisson process in time (exponential gaps), uniform in range. Plots whose crossings fall within one dwell
 * (DWELL_US of beam motion) share one CAT048 data block, framed with the board time of the first; every sector
 * boundary sends a CAT034 message (sector 0: north marker, followed by a STATUS frame). TIME_SYNC_REQ is stamped
 * in the RX interrupt at its closing flag; IDENT_REQ answers "hil-radar-avr;1.0;<build>".
 *
 * Capacity: MAX_TARGETS truth records (RAM: two tables, the one in use and the one arriving); records beyond
 * it are dropped and counted in STATUS.overruns, as are plots more than MAX_LATE_US behind the beam when the
 * line cannot carry them all (about 300 plots/s at 115200 baud).
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/wdt.h>
#include <math.h>
#include <string.h>

#include "board.h"
#include "hilwire.h"

#define FW_NAME "hil-radar-avr"
#define MAX_TARGETS 12u
#define RX_RING 128u  /* power of two; 11 ms of bytes at 115200 */
#define FLAG_RING 8u  /* power of two: receive times of the flags still in the RX ring */
#define MAX_BLOCK_PLOTS 6u
#define DWELL_US 1000L
#define MAX_LATE_US 100000L /* a plot this far behind the beam is dropped (STATUS.overruns) */
#define STIM_RECORD 28u
#define STIM_CHUNK 32u
#define STIM_START 0x01u
#define STIM_END 0x02u
#define NO_MODE3A 0xFFFFu
#define CONFIG_SIZE 60u
#define TWO_PI_F 6.28318531f
#define RHO_LSB_M (1852.0f / 256.0f)
#define HEIGHT_LSB_M 7.62f /* 25 ft */
#define TOD_WRAP 11059200UL /* 86400 s in 1/128 s */
#define CLUTTER_MIN_RANGE_M 1000.0f
#define CLUTTER_MAX_EL_RAD 0.0523599f /* 3 degrees */
#define CLUTTER_SIGMA_RR_MPS 15.0f

typedef struct { /* one STIMULUS record, kept in its wire layout (little-endian, as the AVR is) */
    uint16_t id, mode3a;
    float x, y, z, vx, vy, vz;
} target_t;

typedef struct { /* the SENSOR_CONFIG payload in its wire layout */
    float site_x, site_y, site_z, scan_period_s, sigma_range_m, sigma_azimuth_rad, sigma_elevation_rad,
        sigma_range_rate_mps, pd, clutter_per_scan, max_range_m, iff_reply_p;
    uint32_t seed;
    uint8_t sac, sic, sectors, reserved;
    float north_offset_rad;
} config_t;

typedef struct {
    uint32_t tod;
    uint16_t rho, theta, mode3a, number;
    int16_t height, cal;
    uint8_t has; /* HAS_* */
} plot_t;
#define HAS_MODE3A 1u
#define HAS_HEIGHT 2u
#define HAS_CAL 4u

_Static_assert(sizeof(target_t) == STIM_RECORD, "target_t must match the STIMULUS record");
_Static_assert(sizeof(config_t) == CONFIG_SIZE, "config_t must match the SENSOR_CONFIG payload");

/* ---- receive side (filled by the RX interrupt and rx_pump) ---- */
static uint8_t rx_ring[RX_RING];
static volatile uint8_t rx_head, rx_tail;
static uint32_t flag_time[FLAG_RING];
static volatile uint8_t flag_head, flag_tail;
static hw_reader reader;
static uint8_t cur_type = 0xFFu;

static target_t tables[2][MAX_TARGETS];
static target_t *active = tables[0], *pending = tables[1];
static uint8_t n_active, n_pending, pending_ok;
static uint8_t stim_flags, stim_count, stim_base, stim_rec, stim_off;

static config_t cfg_new;
static uint8_t cfg_flag;
static uint32_t cfg_rx32;
static uint8_t token[4];
static uint8_t sync_flag, ident_flag;
static uint32_t sync_rx32;

/* ---- counters (STATUS) ---- */
static uint32_t plots_sent, frames_rx, frames_rejected;
static volatile uint32_t overruns;

/* ---- the sweep ---- */
static config_t cfg;
static uint8_t configured;
static uint32_t scan_us;
static uint32_t t_ref32;            /* active truth is at this board time */
static uint32_t north32;            /* when the beam crossed north in the current scan */
static uint8_t sector_next;         /* next boundary of the current scan (== sectors: the next north) */
static uint32_t next_cross[MAX_TARGETS];
static uint16_t need_predict;       /* bit i: next_cross[i] holds the time to search from, not a crossing */
static uint32_t next_clutter32;
static uint8_t clutter_on;
static uint16_t plot_number;
static uint16_t seq;
static uint32_t rng_state = 1;
static float gauss_spare;
static uint8_t has_spare;

static plot_t block[MAX_BLOCK_PLOTS];
static uint8_t block_n;
static uint32_t block_t0;

ISR(USART_RX_vect)
{
    uint8_t byte = UDR0;
    uint8_t head = rx_head, next = (uint8_t)((head + 1u) & (RX_RING - 1u));
    if (next == rx_tail) {
        overruns++;
        return;
    }
    rx_ring[head] = byte;
    rx_head = next;
    if (byte == HW_FLAG) /* a closing flag's arrival is the frame's receive time (time sync b_rx) */
        flag_time[(flag_head++) & (FLAG_RING - 1u)] = board_micros32();
    board_wake = 1;
}

static int32_t since(uint32_t t, uint32_t ref)
{
    return (int32_t)(t - ref);
}

static uint64_t expand(uint32_t t32)
{
    /* the full board time of a recent low-32-bit time stamp */
    uint64_t now = board_micros();
    return now - (uint32_t)((uint32_t)now - t32);
}

/* ---- random numbers ---- */

static uint32_t xorshift32(void)
{
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

static float uniform(void) /* [0, 1) */
{
    return (float)(xorshift32() >> 8) * (1.0f / 16777216.0f);
}

static float gauss(void)
{
    if (has_spare) {
        has_spare = 0;
        return gauss_spare;
    }
    float u1 = 1.0f - uniform(); /* (0, 1]: log stays finite */
    float r = sqrtf(-2.0f * logf(u1)), a = TWO_PI_F * uniform();
    gauss_spare = r * sinf(a);
    has_spare = 1;
    return r * cosf(a);
}

/* ---- frames out ---- */

static hw_writer wr;

static void frame_begin(uint8_t type, uint64_t t_us)
{
    hw_begin(&wr, board_putc, type, seq++, t_us);
}

static void send_ident(void)
{
    static const char text[] = FW_NAME ";1.0;" HIL_BUILD_ID;
    frame_begin(HW_IDENT_RESP, board_micros());
    hw_bytes(&wr, text, sizeof text - 1u);
    hw_end(&wr);
}

static void send_sync(void)
{
    uint64_t rx = expand(sync_rx32), tx = board_micros();
    frame_begin(HW_TIME_SYNC_RESP, tx);
    hw_bytes(&wr, token, 4);
    hw_u64le(&wr, rx);
    hw_u64le(&wr, tx);
    hw_end(&wr);
}

static void send_status(uint64_t t_us)
{
    frame_begin(HW_STATUS, t_us);
    hw_u32le(&wr, plots_sent);
    hw_u32le(&wr, frames_rx);
    hw_u32le(&wr, frames_rejected);
    hw_u32le(&wr, overruns);
    hw_end(&wr);
}

static uint32_t tod_units(uint64_t t_us)
{
    /* board seconds modulo a day, in 1/128 s, rounded: t_us * 128 / 1e6 = t_us * 2 / 15625 */
    return (uint32_t)(((t_us * 2u + 7812u) / 15625u) % TOD_WRAP);
}

static void be_u16(uint16_t v)
{
    hw_byte(&wr, (uint8_t)(v >> 8));
    hw_byte(&wr, (uint8_t)v);
}

static void be_u24(uint32_t v)
{
    hw_byte(&wr, (uint8_t)(v >> 16));
    be_u16((uint16_t)v);
}

static uint8_t record_len(const plot_t *p)
{
    uint8_t n = (p->has & (HAS_HEIGHT | HAS_CAL)) ? 3u : 2u; /* FSPEC */
    n += 2u + 3u + 1u + 4u + 2u;                             /* I010 I140 I020 I040 I161 */
    if (p->has & HAS_MODE3A)
        n += 2u;
    if (p->has & HAS_HEIGHT)
        n += 2u;
    if (p->has & HAS_CAL)
        n += 3u;
    return n;
}

static void flush_block(void)
{
    if (!block_n)
        return;
    uint8_t n = block_n;
    block_n = 0;
    uint16_t len = 3;
    for (uint8_t i = 0; i < n; i++)
        len += record_len(&block[i]);
    frame_begin(HW_ASTERIX, expand(block_t0));
    hw_byte(&wr, 48);
    be_u16(len);
    for (uint8_t i = 0; i < n; i++) {
        const plot_t *p = &block[i];
        uint8_t third = (p->has & (HAS_HEIGHT | HAS_CAL)) != 0;
        /* FSPEC: FRN 1-4 (I010 I140 I020 I040), 5 (I070), 11 (I161), 19 (I110), 20 (I120) */
        hw_byte(&wr, (uint8_t)(0xF0u | ((p->has & HAS_MODE3A) ? 0x08u : 0u) | 0x01u));
        hw_byte(&wr, (uint8_t)(0x10u | (third ? 0x01u : 0u)));
        if (third)
            hw_byte(&wr, (uint8_t)(((p->has & HAS_HEIGHT) ? 0x08u : 0u) | ((p->has & HAS_CAL) ? 0x04u : 0u)));
        hw_byte(&wr, cfg.sac);
        hw_byte(&wr, cfg.sic);
        be_u24(p->tod);
        hw_byte(&wr, (uint8_t)(((p->has & HAS_MODE3A) ? 3u : 1u) << 5)); /* TYP: PSR+SSR or single PSR */
        be_u16(p->rho);
        be_u16(p->theta);
        if (p->has & HAS_MODE3A)
            be_u16(p->mode3a & 0x0FFFu);
        be_u16(p->number);
        if (p->has & HAS_HEIGHT)
            be_u16((uint16_t)p->height & 0x3FFFu);
        if (p->has & HAS_CAL) {
            hw_byte(&wr, 0x80); /* subfield 1 (CAL) only */
            be_u16((uint16_t)p->cal & 0x03FFu);
        }
    }
    hw_end(&wr);
    plots_sent += n;
}

static void send_sector(uint32_t t32, uint8_t sector)
{
    uint64_t t_us = expand(t32);
    uint16_t period = (uint16_t)(cfg.scan_period_s * 128.0f + 0.5f);
    frame_begin(HW_ASTERIX, t_us);
    hw_byte(&wr, 34);
    be_u16(13);
    hw_byte(&wr, 0xF8); /* I010 I000 I030 I020 I041 */
    hw_byte(&wr, cfg.sac);
    hw_byte(&wr, cfg.sic);
    hw_byte(&wr, sector ? 2u : 1u); /* sector crossing, or the north marker */
    be_u24(tod_units(t_us));
    hw_byte(&wr, (uint8_t)(((uint16_t)sector * 256u + cfg.sectors / 2u) / cfg.sectors));
    be_u16(period);
    hw_end(&wr);
    if (!sector)
        send_status(t_us);
}

/* ---- frames in ---- */

static void on_payload(uint16_t pos, uint8_t b)
{
    switch (cur_type) {
    case HW_STIMULUS:
        if (pos == 0) {
            stim_flags = b;
            if (b & STIM_START) {
                stim_base = 0;
                pending_ok = 0; /* its records overwrite the table from here on */
            } else {
                stim_base = n_pending;
            }
            stim_rec = stim_off = 0;
        } else if (pos == 1) {
            stim_count = b;
        } else {
            uint16_t idx = (uint16_t)stim_base + stim_rec;
            if (idx < MAX_TARGETS)
                ((uint8_t *)&pending[idx])[stim_off] = b;
            if (++stim_off == STIM_RECORD) {
                stim_off = 0;
                stim_rec++;
            }
        }
        break;
    case HW_SENSOR_CONFIG:
        if (!cfg_flag && pos < CONFIG_SIZE)
            ((uint8_t *)&cfg_new)[pos] = b;
        break;
    case HW_TIME_SYNC_REQ:
        if (pos < 4)
            token[pos] = b;
        break;
    default:
        break;
    }
}

static void on_frame(uint16_t len, uint32_t rx32)
{
    uint8_t ok = 0;
    switch (cur_type) {
    case HW_STIMULUS:
        if (stim_count > STIM_CHUNK || len != 2u + (uint16_t)stim_count * STIM_RECORD)
            break;
        if (stim_flags & STIM_START) {
            n_pending = 0;
            pending_ok = 1;
        }
        if (!pending_ok) /* the middle of a set whose start we missed */
            break;
        ok = 1;
        {
            uint16_t n = (uint16_t)stim_base + stim_count;
            if (n > MAX_TARGETS) {
                overruns += n - MAX_TARGETS;
                n = MAX_TARGETS;
            }
            n_pending = (uint8_t)n;
        }
        if (stim_flags & STIM_END) {
            target_t *t = active;
            active = pending;
            pending = t;
            n_active = n_pending;
            n_pending = 0;
            pending_ok = 0;
            t_ref32 = rx32;
            /* search every crossing from the moment the set took effect, whenever the prediction runs */
            for (uint8_t i = 0; i < n_active; i++)
                next_cross[i] = rx32;
            need_predict = (uint16_t)((1u << n_active) - 1u);
        }
        break;
    case HW_SENSOR_CONFIG:
        if (len == CONFIG_SIZE && !cfg_flag) {
            cfg_flag = 1;
            cfg_rx32 = rx32;
            ok = 1;
        }
        break;
    case HW_TIME_SYNC_REQ:
        if (len == 4) {
            sync_rx32 = rx32;
            sync_flag = 1;
            ok = 1;
        }
        break;
    case HW_IDENT_REQ:
        ok = len == 0;
        ident_flag |= ok;
        break;
    default: /* unknown, or a board-to-host type */
        break;
    }
    if (ok)
        frames_rx++;
    else
        frames_rejected++;
}

static void rx_pump(void)
{
    while (rx_tail != rx_head) {
        uint8_t tail = rx_tail;
        uint8_t b = rx_ring[tail];
        uint32_t t = 0;
        if (b == HW_FLAG) {
            cli();
            if ((uint8_t)(flag_head - flag_tail) > FLAG_RING) /* older stamps were overwritten */
                flag_tail = (uint8_t)(flag_head - FLAG_RING);
            t = flag_time[(flag_tail++) & (FLAG_RING - 1u)];
            sei();
        }
        rx_tail = (uint8_t)((tail + 1u) & (RX_RING - 1u));
        switch (hw_feed(&reader, b)) {
        case HW_EV_HEADER:
            cur_type = reader.type;
            break;
        case HW_EV_PAYLOAD:
            on_payload(reader.pos, reader.byte);
            break;
        case HW_EV_FRAME:
            on_frame(reader.len, t);
            cur_type = 0xFFu;
            break;
        case HW_EV_REJECT:
            frames_rejected++;
            if (cur_type == HW_STIMULUS)
                pending_ok = 0;
            cur_type = 0xFFu;
            break;
        default:
            break;
        }
    }
}

/* ---- the beam ---- */

static float beam_frac(uint32_t t) /* beam azimuth at t as a fraction of a turn clockwise from north */
{
    int32_t d = since(t, north32) % (int32_t)scan_us;
    if (d < 0)
        d += (int32_t)scan_us;
    return (float)d / (float)scan_us;
}

static float wrap1(float f)
{
    f -= floorf(f);
    return f >= 1.0f ? 0.0f : f;
}

static void relative(const target_t *tg, uint32_t t, float *r)
{
    float dt = (float)since(t, t_ref32) * 1e-6f;
    r[0] = tg->x + tg->vx * dt - cfg.site_x;
    r[1] = tg->y + tg->vy * dt - cfg.site_y;
    r[2] = tg->z + tg->vz * dt - cfg.site_z;
}

static float azimuth_frac(const target_t *tg, uint32_t t)
{
    float r[3];
    relative(tg, t, r);
    return wrap1(atan2f(r[0], r[1]) / TWO_PI_F); /* east over north: clockwise from north */
}

static void predict(uint8_t i)
{
    /* the first crossing after next_cross[i]; refined once because the target moves while the beam turns */
    uint32_t from = next_cross[i];
    float b = beam_frac(from);
    float lead = wrap1(azimuth_frac(&active[i], from) - b);
    lead = wrap1(azimuth_frac(&active[i], from + (uint32_t)(lead * (float)scan_us)) - b);
    next_cross[i] = from + (uint32_t)(lead * (float)scan_us);
    need_predict &= (uint16_t)~(1u << i);
}

static void add_plot(uint32_t t, float range, float az, float el, float rr, uint16_t mode3a)
{
    if (!block_n)
        block_t0 = t;
    plot_t *p = &block[block_n++];
    float rho = range / RHO_LSB_M + 0.5f;
    p->tod = tod_units(expand(t));
    p->rho = rho >= 65535.0f ? 65535u : (uint16_t)rho;
    p->theta = (uint16_t)(uint32_t)(wrap1(az / TWO_PI_F) * 65536.0f + 0.5f);
    p->mode3a = mode3a;
    p->number = plot_number;
    plot_number = (plot_number + 1u) & 0x0FFFu;
    p->has = mode3a != NO_MODE3A ? HAS_MODE3A : 0u;
    float h = roundf((cfg.site_z + range * sinf(el)) / HEIGHT_LSB_M);
    if (h >= -8192.0f && h <= 8191.0f) {
        p->height = (int16_t)h;
        p->has |= HAS_HEIGHT;
    }
    float cal = roundf(rr);
    if (cal >= -511.0f && cal <= 511.0f) { /* I120 carries +-511 m/s: faster plots go without Doppler */
        p->cal = (int16_t)cal;
        p->has |= HAS_CAL;
    }
}

static void detect(uint8_t i, uint32_t t)
{
    const target_t *tg = &active[i];
    float r[3];
    relative(tg, t, r);
    float horiz = sqrtf(r[0] * r[0] + r[1] * r[1]);
    float range = sqrtf(horiz * horiz + r[2] * r[2]);
    if (range > cfg.max_range_m || range <= 0.0f || uniform() >= cfg.pd)
        return;
    float rr = (r[0] * tg->vx + r[1] * tg->vy + r[2] * tg->vz) / range;
    float az = atan2f(r[0], r[1]), el = atan2f(r[2], horiz);
    float rm = range + cfg.sigma_range_m * gauss();
    float azm = az + cfg.sigma_azimuth_rad * gauss();
    float elm = el + cfg.sigma_elevation_rad * gauss();
    float rrm = rr + cfg.sigma_range_rate_mps * gauss();
    if (rm < 1.0f)
        rm = 1.0f;
    elm = elm < -0.5f ? -0.5f : (elm > 1.5f ? 1.5f : elm);
    uint16_t code = NO_MODE3A;
    if (tg->mode3a != NO_MODE3A && uniform() < cfg.iff_reply_p)
        code = tg->mode3a;
    add_plot(t, rm, azm, elm, rrm, code);
}

static void schedule_clutter(uint32_t from)
{
    /* exponential gaps: a Poisson process of clutter_per_scan plots a turn */
    float gap = -logf(1.0f - uniform()) * (float)scan_us / cfg.clutter_per_scan;
    next_clutter32 = from + (gap > 2.0e9f ? 2000000000UL : (uint32_t)gap);
}

static void clutter(uint32_t t)
{
    float range = CLUTTER_MIN_RANGE_M + uniform() * (cfg.max_range_m - CLUTTER_MIN_RANGE_M);
    float el = uniform() * CLUTTER_MAX_EL_RAD;
    add_plot(t, range, beam_frac(t) * TWO_PI_F, el, CLUTTER_SIGMA_RR_MPS * gauss(), NO_MODE3A);
    schedule_clutter(t);
}

static uint32_t sector_time(void)
{
    return north32 + (uint32_t)(((uint64_t)scan_us * sector_next) / cfg.sectors);
}

static void apply_config(void)
{
    memcpy(&cfg, &cfg_new, sizeof cfg);
    uint32_t epoch = cfg_rx32;
    cfg_flag = 0;
    if (!(cfg.scan_period_s >= 0.1f && cfg.scan_period_s <= 500.0f) || !(cfg.max_range_m > 0.0f)) {
        configured = 0; /* a period the sweep and I041 cannot carry: stop sweeping, count it */
        frames_rejected++;
        return;
    }
    if (!cfg.sectors)
        cfg.sectors = 1;
    scan_us = (uint32_t)(cfg.scan_period_s * 1e6f);
    float off = wrap1(cfg.north_offset_rad / TWO_PI_F);
    /* the scan in progress crossed north before the epoch; the next boundary is the one past the offset */
    north32 = epoch - (uint32_t)(off * (float)scan_us);
    sector_next = (uint8_t)(off * cfg.sectors) + 1u;
    rng_state = cfg.seed ? cfg.seed : 0x9E3779B9UL;
    has_spare = 0;
    block_n = 0;
    for (uint8_t i = 0; i < n_active; i++)
        next_cross[i] = epoch;
    need_predict = (uint16_t)((1u << n_active) - 1u);
    clutter_on = cfg.clutter_per_scan > 0.0f;
    if (clutter_on)
        schedule_clutter(epoch);
    configured = 1;
}

enum { EV_NONE, EV_SECTOR, EV_CLUTTER, EV_TARGET };

static void answer_requests(void)
{
    if (ident_flag) {
        ident_flag = 0;
        send_ident();
    }
    if (sync_flag) {
        sync_flag = 0;
        send_sync();
    }
}

static void sweep(void)
{
    for (;;) {
        wdt_reset(); /* every pass makes progress: under overload this loop runs for long */
        rx_pump();
        answer_requests(); /* time sync and identity are not starved by a busy sweep */
        if (!configured || cfg_flag)
            break;
        if (need_predict) {
            for (uint8_t i = 0; i < n_active; i++)
                if (need_predict & (1u << i)) {
                    predict(i);
                    break;
                }
            continue;
        }
        uint32_t now = board_micros32();
        uint8_t kind = EV_SECTOR, which = 0;
        uint32_t t = sector_time();
        if (clutter_on && since(next_clutter32, t) < 0) {
            kind = EV_CLUTTER;
            t = next_clutter32;
        }
        for (uint8_t i = 0; i < n_active; i++)
            if (since(next_cross[i], t) < 0) {
                kind = EV_TARGET;
                which = i;
                t = next_cross[i];
            }
        if (since(t, now) > 0)
            break; /* nothing due yet */
        if (block_n && (kind == EV_SECTOR || block_n == MAX_BLOCK_PLOTS || since(t, block_t0) > DWELL_US)) {
            flush_block(); /* may run rx_pump while it waits: look again afterwards */
            continue;
        }
        /* Overload (more plots than the line carries): drop plots that are already late instead of falling
         * further behind, and count them; sector messages still go out. */
        uint8_t shed = kind != EV_SECTOR && since(now, t) > MAX_LATE_US;
        if (shed)
            overruns++;
        if (kind == EV_SECTOR) {
            uint8_t sector = sector_next;
            if (sector >= cfg.sectors) { /* the next scan's north */
                north32 += scan_us;
                sector_next = 0;
                sector = 0;
            }
            sector_next++;
            send_sector(t, sector);
        } else if (kind == EV_CLUTTER) {
            if (shed)
                schedule_clutter(t);
            else
                clutter(t);
        } else {
            if (!shed)
                detect(which, t);
            /* search the next crossing from a little past this one: the beam has left the target */
            next_cross[which] = t + scan_us / 64u;
            need_predict |= (uint16_t)(1u << which);
        }
    }
    flush_block();
}

int main(void)
{
    hw_reader_init(&reader);
    board_tx_wait_hook = rx_pump;
    board_init();
    wdt_enable(WDTO_500MS);
    for (;;) {
        wdt_reset();
        rx_pump();
        answer_requests();
        if (cfg_flag)
            apply_config();
        sweep();
        board_idle();
    }
}
