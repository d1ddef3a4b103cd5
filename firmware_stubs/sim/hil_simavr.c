/* hil-simavr: run unchanged AVR board firmware under libsimavr, UART0 bridged to a pty, paced to the wall clock.
 *
 *   hil-simavr [--mcu atmega328p] [--freq 16000000] [--baud 115200] [--no-pace] FIRMWARE.elf|FIRMWARE.hex
 *
 * It creates a pty with openpty() and announces it as one JSON line on stdout, {"pty": "/dev/pts/N", ...}; no
 * fixed link in /tmp, so any number of boards run side by side. The AVR has run BOOT_MS of simulated time by
 * then, so its UART is listening when a client first writes. Bytes written to the pty reach the AVR's UART
 * one byte time (11 bits at --baud) apart, as on a wire; bytes the AVR sends go to the pty as the simulated
 * UART shifts them out. Simulated time is held to the wall clock (at most PACE_CHUNK_US ahead; if the host
 * stalls it catches up, and beyond MAX_LAG_NS it slips and counts it), so the firmware's microsecond clock runs
 * at real speed. It exits cleanly on SIGTERM/SIGINT/SIGHUP and when its parent dies, printing one line of
 * statistics on stderr; exit status 1 if the AVR crashed.
 *
 * The launch feed, the bench's watch on a launcher board: when the ELF has the launcher firmware's
 * `hil_launch_record`, the harness watches the launch discrete (PB5), reads that record out of SRAM at each of its
 * edges, and prints the launch as one more JSON line on stdout after the announcement, the format of the mock
 * launcher's (hil/emulators/launcher.py, Launch.to_json()):
 *   {"launch": {"seq": 3, "track": 12, "azimuth_rad": ..., "elevation_rad": ..., "range_m": 8000, "tgo_s": 12.5,
 *               "t_us": 123456, "azimuth_cdeg": 18000, "elevation_cdeg": 500, "tgo_cs": 1250}}
 * The announcement says "launch_feed": true then; otherwise stdout ends after it. So the host learns a launch from
 * the board, whatever became of the Modbus reply. An unread stdout never stalls the board: lines wait in a
 * bounded buffer, and are counted as lost beyond it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <getopt.h>
#include <inttypes.h>
#include <libelf.h>
#include <math.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "avr_ioport.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_cycle_timers.h"
#include "sim_elf.h"
#include "sim_hex.h"
#include "sim_io.h"
#include "sim_irq.h"

#define PACE_CHUNK_US 200u        /* simulated time run between looks at the pty and the clock */
#define BOOT_MS 10u                /* simulated time run before the pty is announced */
#define MAX_LAG_NS 1000000000LL   /* further behind than this, stop catching up (a slip) */
#define OUT_CAP 65536u            /* bytes from the AVR not yet taken by the pty */
#define IN_CAP 4096u              /* bytes for the AVR not yet shifted in */
#define FEED_CAP 16384u           /* launch lines not yet taken by the reader of stdout (about 60) */
#define DATA_SEGMENT 0x800000u    /* where the GNU linker puts the AVR's data space in an ELF */
/* The launcher firmware's launch record and launch discrete (firmware_stubs/arduino/launcher/launcher.c):
 * u16 count, seq, track, az cdeg, el cdeg, range m, tgo cs, then u64 board time in us, little-endian */
#define LAUNCH_RECORD "hil_launch_record"
#define LAUNCH_RECORD_SIZE 22u
#define LAUNCH_DISCRETE_PORT 'B'
#define LAUNCH_DISCRETE_PIN 5

static volatile sig_atomic_t stop;
static avr_t *avr;
static avr_irq_t *uart_in;
static uint8_t out_buf[OUT_CAP], in_buf[IN_CAP];
static size_t out_head, out_len, in_pos, in_len;
static int xoff, feeding;
static avr_cycle_count_t byte_cycles;
static uint64_t bytes_in, bytes_out, bytes_dropped, slips;
static uint32_t record_addr; /* the launch record's offset in the AVR's data space */
static uint16_t count_seen;  /* the record's launch count when last reported */
static char feed_buf[FEED_CAP];
static size_t feed_len;
static int feed_fd = -1;
static uint64_t launches_reported, launch_lines_lost, launches_unseen;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void on_output(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (out_len == OUT_CAP) { /* nobody reads the pty: keep the newest bytes, as a wire would lose the old */
        out_head = (out_head + 1) % OUT_CAP;
        out_len--;
        bytes_dropped++;
    }
    out_buf[(out_head + out_len) % OUT_CAP] = (uint8_t)value;
    out_len++;
    bytes_out++;
}

static void on_xoff(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    xoff = value != 0;
}

static void on_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    if (value)
        xoff = 0;
}

static avr_cycle_count_t feed(struct avr_t *a, avr_cycle_count_t when, void *param)
{
    (void)a;
    (void)param;
    /* One byte per byte time; while the UART's FIFO is full hold it (simavr raises XON only when the firmware
     * polls UCSRA, so retry on the next byte time instead of waiting for XON). */
    if (in_pos < in_len && !xoff) {
        avr_raise_irq(uart_in, in_buf[in_pos++]);
        bytes_in++;
    }
    if (in_pos < in_len)
        return when + byte_cycles;
    in_pos = in_len = 0;
    feeding = 0;
    return 0;
}

static void no_sleep(struct avr_t *a, avr_cycle_count_t how_long)
{
    /* simavr's default sleeps in usleep(); we pace in the main loop instead */
    (void)a;
    (void)how_long;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void flush_output(int master)
{
    while (out_len) {
        size_t n = out_len, first = OUT_CAP - out_head;
        if (n > first)
            n = first;
        ssize_t w = write(master, out_buf + out_head, n);
        if (w <= 0)
            return; /* EAGAIN: the pty's buffer is full, try again next round */
        out_head = (out_head + (size_t)w) % OUT_CAP;
        out_len -= (size_t)w;
    }
}

static void read_input(int master)
{
    if (in_pos == in_len)
        in_pos = in_len = 0;
    if (in_len == IN_CAP)
        return;
    ssize_t r = read(master, in_buf + in_len, IN_CAP - in_len);
    if (r <= 0)
        return;
    in_len += (size_t)r;
    if (!feeding) {
        feeding = 1;
        avr_cycle_timer_register(avr, 1, feed, NULL);
    }
}

/* Where a global object of the ELF lives (its symbol's value) and its size; 0 if the ELF has no such object */
static int elf_object(const char *path, const char *name, uint32_t *value, uint32_t *size)
{
    int found = 0, fd = elf_version(EV_CURRENT) == EV_NONE ? -1 : open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
    for (Elf_Scn *scn = NULL; elf && !found && (scn = elf_nextscn(elf, scn));) {
        GElf_Shdr shdr;
        Elf_Data *data;
        if (!gelf_getshdr(scn, &shdr) || shdr.sh_type != SHT_SYMTAB || !shdr.sh_entsize ||
            !(data = elf_getdata(scn, NULL)))
            continue;
        for (size_t i = 0; i < shdr.sh_size / shdr.sh_entsize; i++) {
            GElf_Sym sym;
            if (!gelf_getsym(data, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_OBJECT)
                continue;
            const char *s = elf_strptr(elf, shdr.sh_link, sym.st_name);
            if (s && !strcmp(s, name)) {
                *value = (uint32_t)sym.st_value;
                *size = (uint32_t)sym.st_size;
                found = 1;
                break;
            }
        }
    }
    if (elf)
        elf_end(elf);
    close(fd);
    return found;
}

static uint16_t le16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static void feed_line(const char *line, size_t n)
{
    if (n > FEED_CAP - feed_len) { /* nobody reads stdout: keep what waits, the board runs on */
        launch_lines_lost++;
        return;
    }
    memcpy(feed_buf + feed_len, line, n);
    feed_len += n;
}

static void flush_feed(void)
{
    while (feed_fd >= 0 && feed_len) {
        ssize_t w = write(feed_fd, feed_buf, feed_len);
        if (w < 0 && errno == EPIPE) { /* the reader is gone: nobody will take these */
            close(feed_fd);
            feed_fd = -1;
            feed_len = 0;
            return;
        }
        if (w <= 0)
            return; /* EAGAIN: the pipe is full, try again next round */
        memmove(feed_buf, feed_buf + w, feed_len - (size_t)w);
        feed_len -= (size_t)w;
    }
}

/* whole launch lines still waiting when the harness ends: lost, as those it had no room for */
static uint64_t unsent_lines(void)
{
    uint64_t n = 0;
    for (size_t i = 0; i < feed_len; i++)
        n += feed_buf[i] == '\n';
    return n;
}

static void on_launch_discrete(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    /* The firmware toggles the line after the record is whole; the record's count tells a launch from a reset
     * or any other write of the port (the count is unchanged then). */
    const uint8_t *r = avr->data + record_addr;
    uint16_t count = le16(r);
    if (count == count_seen)
        return;
    /* more than one step since the last edge (or a restarted board's count past 1): launches without an edge */
    launches_unseen += count > count_seen ? (uint16_t)(count - count_seen - 1u) : (count ? count - 1u : 0u);
    count_seen = count;
    uint16_t az = le16(r + 6), el = le16(r + 8), tgo = le16(r + 12);
    uint64_t t_us = 0;
    for (int i = 7; i >= 0; i--)
        t_us = (t_us << 8) | r[14 + i];
    /* radians and seconds computed as Launch.to_json() computes them, printed to round-trip exactly */
    char line[512];
    int n = snprintf(line, sizeof line,
                     "{\"launch\": {\"seq\": %u, \"track\": %u, \"azimuth_rad\": %.17g, \"elevation_rad\": %.17g, "
                     "\"range_m\": %u, \"tgo_s\": %.17g, \"t_us\": %" PRIu64 ", \"azimuth_cdeg\": %u, "
                     "\"elevation_cdeg\": %u, \"tgo_cs\": %u}}\n",
                     le16(r + 2), le16(r + 4), az / 100.0 * (M_PI / 180.0), el / 100.0 * (M_PI / 180.0), le16(r + 10),
                     tgo / 100.0, t_us, az, el, tgo);
    launches_reported++;
    if (feed_fd >= 0 && n > 0 && (size_t)n < sizeof line)
        feed_line(line, (size_t)n);
}

static int load(const char *path, elf_firmware_t *fw)
{
    memset(fw, 0, sizeof *fw);
    size_t n = strlen(path);
    if (n > 4 && !strcmp(path + n - 4, ".hex")) {
        uint32_t size = 0, start = 0;
        fw->flash = read_ihex_file(path, &size, &start);
        fw->flashsize = size;
        fw->flashbase = start;
        return fw->flash ? 0 : -1;
    }
    return elf_read_firmware(path, fw);
}

static void usage(void)
{
    fprintf(stderr, "usage: hil-simavr [--mcu atmega328p] [--freq 16000000] [--baud 115200] [--no-pace] "
                    "FIRMWARE.elf|FIRMWARE.hex\n");
}

int main(int argc, char **argv)
{
    pid_t parent = getppid();
    const char *mcu = "atmega328p";
    uint32_t freq = 16000000u, baud = 115200u;
    int pace = 1;
    static const struct option opts[] = {
        {"mcu", required_argument, 0, 'm'}, {"freq", required_argument, 0, 'f'},
        {"baud", required_argument, 0, 'b'}, {"no-pace", no_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0},
    };
    for (int c; (c = getopt_long(argc, argv, "m:f:b:nh", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': mcu = optarg; break;
        case 'f': freq = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'b': baud = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'n': pace = 0; break;
        default: usage(); return 2;
        }
    }
    if (optind != argc - 1 || !freq || !baud) {
        usage();
        return 2;
    }

    /* never outlive the run that started us */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* the real stdout carries the announcement only: simavr prints as it loads and runs */
    int announce = dup(STDOUT_FILENO);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) {
        dup2(devnull, STDOUT_FILENO);
        close(devnull);
    }

    elf_firmware_t fw;
    if (load(argv[optind], &fw) != 0 || !fw.flash) {
        fprintf(stderr, "hil-simavr: cannot load %s\n", argv[optind]);
        return 2;
    }
    if (fw.mmcu[0])
        mcu = fw.mmcu;
    if (fw.frequency)
        freq = fw.frequency;
    avr = avr_make_mcu_by_name(mcu);
    if (!avr) {
        fprintf(stderr, "hil-simavr: unknown MCU %s\n", mcu);
        return 2;
    }
    avr_init(avr);
    avr->log = LOG_ERROR;
    avr->frequency = freq;
    avr->sleep = no_sleep;
    avr_load_firmware(avr, &fw);
    uint32_t record_value = 0, record_size = 0;
    size_t path_len = strlen(argv[optind]);
    int launch_feed = (path_len < 4 || strcmp(argv[optind] + path_len - 4, ".hex")) &&
                      elf_object(argv[optind], LAUNCH_RECORD, &record_value, &record_size);
    if (launch_feed && (record_size != LAUNCH_RECORD_SIZE || record_value < DATA_SEGMENT ||
                        record_value - DATA_SEGMENT + LAUNCH_RECORD_SIZE > (uint32_t)avr->ramend + 1u)) {
        fprintf(stderr, "hil-simavr: %s is not the launch record this harness reads (%" PRIu32 " bytes at 0x%" PRIx32
                ")\n", LAUNCH_RECORD, record_size, record_value);
        return 2;
    }
    if (launch_feed) {
        record_addr = record_value - DATA_SEGMENT;
        avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(LAUNCH_DISCRETE_PORT), LAUNCH_DISCRETE_PIN),
                                on_launch_discrete, NULL);
    }
    uint32_t flags = 0; /* no console echo of UART bytes, no usleep when the firmware polls UCSRA */
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    byte_cycles = (avr_cycle_count_t)freq * 11u / baud; /* simavr times a byte as 11 bits */

    uart_in = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT), on_output, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF), on_xoff, NULL);
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON), on_xon, NULL);

    int master, slave;
    if (openpty(&master, &slave, NULL, NULL, NULL) != 0) {
        perror("hil-simavr: openpty");
        return 2;
    }
    /* raw bytes both ways; the slave stays open here too, so the master never sees a hang-up when a client
     * closes and reopens the port */
    struct termios tio;
    tcgetattr(slave, &tio);
    cfmakeraw(&tio);
    tcsetattr(slave, TCSANOW, &tio);
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);

    /* Boot before announcing: until the C runtime has cleared RAM and the firmware has enabled its UART (about
     * half a millisecond), simavr drops every byte a client sends, as a real board just out of reset would. */
    while (avr->cycle < freq / (1000u / BOOT_MS)) {
        int state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(stderr, "hil-simavr: the AVR did not boot (state %d)\n", state);
            return 1;
        }
    }
    if (announce >= 0) {
        dprintf(announce, "{\"pty\": \"%s\", \"mcu\": \"%s\", \"f_cpu\": %" PRIu32 ", \"baud\": %" PRIu32
                ", \"pid\": %d, \"launch_feed\": %s}\n", ttyname(slave), mcu, freq, baud, (int)getpid(),
                launch_feed ? "true" : "false");
        struct stat st;
        if (!launch_feed) {
            close(announce);
        } else {
            feed_fd = announce;
            /* a pipe (the run reading us) must never block the board; a terminal or file is left as it is */
            if (fstat(feed_fd, &st) == 0 && S_ISFIFO(st.st_mode))
                fcntl(feed_fd, F_SETFL, fcntl(feed_fd, F_GETFL) | O_NONBLOCK);
        }
    }

    const avr_cycle_count_t chunk = (avr_cycle_count_t)freq / (1000000u / PACE_CHUNK_US);
    int64_t wall0 = now_ns(), start = wall0;
    avr_cycle_count_t cycle0 = avr->cycle;
    int status = 0;
    while (!stop) {
        avr_cycle_count_t until = avr->cycle + chunk;
        int state = cpu_Running;
        while (avr->cycle < until) {
            state = avr_run(avr);
            if (state == cpu_Done || state == cpu_Crashed)
                break;
        }
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(stderr, "hil-simavr: the AVR %s at cycle %" PRIu64 "\n",
                    state == cpu_Crashed ? "crashed" : "stopped", (uint64_t)avr->cycle);
            status = state == cpu_Crashed;
            break;
        }
        flush_output(master);
        flush_feed();
        int64_t ahead = 0;
        if (pace) {
            int64_t sim = (int64_t)((double)(avr->cycle - cycle0) * 1e9 / freq);
            ahead = sim - (now_ns() - wall0);
            if (ahead < -MAX_LAG_NS) { /* the host stalled for a long time: do not sprint through it */
                wall0 -= -ahead;
                ahead = 0;
                slips++;
            }
        }
        struct pollfd p = {.fd = master, .events = (short)((in_len < IN_CAP ? POLLIN : 0) | (out_len ? POLLOUT : 0))};
        struct timespec ts = {.tv_sec = ahead > 0 ? ahead / 1000000000LL : 0,
                              .tv_nsec = ahead > 0 ? ahead % 1000000000LL : 0};
        if (ppoll(&p, 1, &ts, NULL) > 0) {
            if (p.revents & POLLIN)
                read_input(master);
            if (p.revents & POLLOUT)
                flush_output(master);
        }
    }
    flush_output(master);
    flush_feed();
    double sim_s = (double)(avr->cycle - cycle0) / freq, wall_s = (double)(now_ns() - start) / 1e9;
    fprintf(stderr,
            "hil-simavr: sim %.3f s, wall %.3f s, %" PRIu64 " bytes in, %" PRIu64 " bytes out, %" PRIu64
            " dropped, %" PRIu64 " slips, %" PRIu64 " launches reported, %" PRIu64 " launch lines lost, %" PRIu64
            " launches without an edge\n",
            sim_s, wall_s, bytes_in, bytes_out, bytes_dropped, slips, launches_reported,
            launch_lines_lost + unsent_lines(), launches_unseen);
    avr_terminate(avr);
    close(master);
    close(slave);
    return status;
}
