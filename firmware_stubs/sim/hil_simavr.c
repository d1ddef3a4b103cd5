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
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

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

static volatile sig_atomic_t stop;
static avr_t *avr;
static avr_irq_t *uart_in;
static uint8_t out_buf[OUT_CAP], in_buf[IN_CAP];
static size_t out_head, out_len, in_pos, in_len;
static int xoff, feeding;
static avr_cycle_count_t byte_cycles;
static uint64_t bytes_in, bytes_out, bytes_dropped, slips;

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
    FILE *out = announce >= 0 ? fdopen(announce, "w") : NULL;

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
    if (out) {
        fprintf(out, "{\"pty\": \"%s\", \"mcu\": \"%s\", \"f_cpu\": %" PRIu32 ", \"baud\": %" PRIu32
                ", \"pid\": %d}\n", ttyname(slave), mcu, freq, baud, (int)getpid());
        fclose(out);
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
    double sim_s = (double)(avr->cycle - cycle0) / freq, wall_s = (double)(now_ns() - start) / 1e9;
    fprintf(stderr,
            "hil-simavr: sim %.3f s, wall %.3f s, %" PRIu64 " bytes in, %" PRIu64 " bytes out, %" PRIu64
            " dropped, %" PRIu64 " slips\n",
            sim_s, wall_s, bytes_in, bytes_out, bytes_dropped, slips);
    avr_terminate(avr);
    close(master);
    close(slave);
    return status;
}
