/* modbus_rtt: the libmodbus baseline for the launcher link's round trips (client), or a bare libmodbus
 * server to measure the transport floor (--serve).
 *
 * Client: modbus_rtt (--rtu PATH [--baud B] | --tcp IPV4:PORT) [--id N] [-n N] [--ops status,write]
 *                    [--timeout-ms MS]
 *   times N exchanges of each requested operation, the same requests LauncherLink makes:
 *     status  FC4, 24 input registers from 0 (a whole launcher status)
 *     write   FC16, 4 holding registers from 3 (FIRE_TRACK, FIRE_AZ_CDEG, FIRE_EL_CDEG, FIRE_SEQ): the
 *             fire command's shape, with FIRE_SEQ = 0. Zero is never a fire: the board checks ZERO_SEQ
 *             before anything else (docs/PROTOCOLS.md section 4), so this write cannot launch in any
 *             state; it only records a ZERO_SEQ reject. FIRE_TRACK/AZ/EL are read first (FC3) and
 *             written back unchanged.
 *   With both operations they alternate (status, write, status, write ...), as a host loop does.
 *   Each exchange is timed with clock_gettime(CLOCK_MONOTONIC) from just before the request is sent to
 *   just after the whole answer is parsed. Prints one JSON object on stdout:
 *     {"library": "libmodbus X.Y.Z", "status_regs": [24 values of the last read],
 *      "write_values": [4 values], "status_ns": [...], "write_ns": [...]}
 *   Any failed exchange is fatal (message on stderr, exit 2): a baseline with holes is no baseline.
 *
 * modbus_rtt --version prints the libmodbus version loaded at run time.
 *
 * Server: modbus_rtt --serve (--rtu PATH [--baud B] | --tcp HOST:PORT) [--id N]
 *   answers with libmodbus' own reply code from a plain register table (IDENT_MAGIC and REGMAP_VERSION
 *   in input registers 0 and 1, nothing else of the launcher's behaviour), announces itself as one JSON
 *   line ({"rtu": PATH} or {"tcp": "HOST:PORT"}, "pid"), and runs until SIGTERM or its parent dies.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <modbus/modbus.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define STATUS_REGS 24
#define FIRE_TRACK 3
#define WRITE_REGS 4
#define INPUT_REGS 36
#define HOLDING_REGS 9
#define IDENT_MAGIC 0x484C
#define REGMAP_VERSION 1

struct options {
    const char *rtu, *tcp;
    int baud, device_id, n, serve, do_status, do_write, timeout_ms;
};

static void die(const char *what) {
    fprintf(stderr, "modbus_rtt: %s: %s\n", what, modbus_strerror(errno));
    exit(2);
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void usage(void) {
    fprintf(stderr, "usage: modbus_rtt [--serve] (--rtu PATH [--baud B] | --tcp HOST:PORT) [--id N] [-n N]"
                    " [--ops status,write] [--timeout-ms MS]\n");
    exit(64);
}

static struct options parse(int argc, char **argv) {
    struct options o = {NULL, NULL, 115200, 1, 100, 0, 1, 1, 1000};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--serve")) { o.serve = 1; continue; }
        if (!strcmp(a, "--version")) {
            /* the library actually loaded, which can differ from the header compiled against */
            printf("libmodbus %u.%u.%u\n", libmodbus_version_major, libmodbus_version_minor,
                   libmodbus_version_micro);
            exit(0);
        }
        if (v == NULL) usage();
        if (!strcmp(a, "--rtu")) o.rtu = v;
        else if (!strcmp(a, "--tcp")) o.tcp = v;
        else if (!strcmp(a, "--baud")) o.baud = atoi(v);
        else if (!strcmp(a, "--id")) o.device_id = atoi(v);
        else if (!strcmp(a, "-n")) o.n = atoi(v);
        else if (!strcmp(a, "--timeout-ms")) o.timeout_ms = atoi(v);
        else if (!strcmp(a, "--ops")) {
            o.do_status = strstr(v, "status") != NULL;
            o.do_write = strstr(v, "write") != NULL;
        } else usage();
        i++;
    }
    if ((o.rtu == NULL) == (o.tcp == NULL) || o.n < 1 || o.baud < 1 || o.timeout_ms < 1
        || o.device_id < 1 || o.device_id > 247 || !(o.do_status || o.do_write))
        usage();
    return o;
}

static modbus_t *open_context(const struct options *o, int *port_out) {
    modbus_t *ctx;
    if (o->rtu) {
        ctx = modbus_new_rtu(o->rtu, o->baud, 'N', 8, 1);
    } else {
        char host[64];
        const char *colon = strrchr(o->tcp, ':');
        size_t len = colon ? (size_t)(colon - o->tcp) : 0;
        if (colon == NULL || len == 0 || len >= sizeof host) usage();
        memcpy(host, o->tcp, len);
        host[len] = '\0';
        *port_out = atoi(colon + 1);
        ctx = modbus_new_tcp(host, *port_out);
    }
    if (ctx == NULL) die("cannot create the libmodbus context");
    if (modbus_set_slave(ctx, o->device_id) == -1) die("device id");
    return ctx;
}

static void print_ns(const char *name, const int64_t *ns, int n) {
    printf(", \"%s\": [", name);
    for (int i = 0; i < n; i++) printf(i ? ",%lld" : "%lld", (long long)ns[i]);
    printf("]");
}

static int client(const struct options *o) {
    int port = 0;
    modbus_t *ctx = open_context(o, &port);
    modbus_set_response_timeout(ctx, (uint32_t)(o->timeout_ms / 1000), (uint32_t)(o->timeout_ms % 1000) * 1000);
    if (modbus_connect(ctx) == -1) die("connect");
    modbus_flush(ctx);  /* a freshly opened pty can hold stale bytes */

    uint16_t status[STATUS_REGS] = {0};
    uint16_t values[WRITE_REGS] = {0};  /* the last one is FIRE_SEQ = 0: never a fire */
    int64_t *status_ns = calloc((size_t)o->n, sizeof *status_ns);
    int64_t *write_ns = calloc((size_t)o->n, sizeof *write_ns);
    if (status_ns == NULL || write_ns == NULL) { fprintf(stderr, "modbus_rtt: out of memory\n"); return 2; }
    if (o->do_write && modbus_read_registers(ctx, FIRE_TRACK, WRITE_REGS - 1, values) != WRITE_REGS - 1)
        die("read FIRE_TRACK..FIRE_EL_CDEG");
    values[WRITE_REGS - 1] = 0;

    for (int i = 0; i < o->n; i++) {
        if (o->do_status) {
            int64_t t0 = now_ns();
            if (modbus_read_input_registers(ctx, 0, STATUS_REGS, status) != STATUS_REGS) die("status read");
            status_ns[i] = now_ns() - t0;
        }
        if (o->do_write) {
            int64_t t0 = now_ns();
            if (modbus_write_registers(ctx, FIRE_TRACK, WRITE_REGS, values) != WRITE_REGS) die("write");
            write_ns[i] = now_ns() - t0;
        }
    }
    modbus_close(ctx);
    modbus_free(ctx);

    printf("{\"library\": \"libmodbus %s\", \"status_regs\": [", LIBMODBUS_VERSION_STRING);
    for (int i = 0; i < STATUS_REGS; i++) printf(i ? ",%u" : "%u", status[i]);
    printf("], \"write_values\": [%u,%u,%u,%u]", values[0], values[1], values[2], values[3]);
    print_ns("status_ns", status_ns, o->do_status ? o->n : 0);
    print_ns("write_ns", write_ns, o->do_write ? o->n : 0);
    printf("}\n");
    free(status_ns);
    free(write_ns);
    return 0;
}

static int server(const struct options *o) {
    int port = 0;
    /* die with the parent, as the Python emulators do, so no server outlives a killed run */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() == 1) return 0;
    modbus_t *ctx = open_context(o, &port);
    modbus_mapping_t *map = modbus_mapping_new(0, 0, HOLDING_REGS, INPUT_REGS);
    if (map == NULL) die("register table");
    map->tab_input_registers[0] = IDENT_MAGIC;
    map->tab_input_registers[1] = REGMAP_VERSION;
    uint8_t req[MODBUS_MAX_ADU_LENGTH];
    int listener = -1;
    if (o->rtu) {
        if (modbus_connect(ctx) == -1) die("open");
        modbus_flush(ctx);
        printf("{\"rtu\": \"%s\", \"device_id\": %d, \"pid\": %d}\n", o->rtu, o->device_id, (int)getpid());
    } else {
        listener = modbus_tcp_listen(ctx, 1);
        if (listener == -1) die("listen");
        struct sockaddr_in addr;
        socklen_t len = sizeof addr;
        if (getsockname(listener, (struct sockaddr *)&addr, &len) == -1) die("getsockname");
        char host[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &addr.sin_addr, host, sizeof host);
        printf("{\"tcp\": \"%s:%d\", \"device_id\": %d, \"pid\": %d}\n", host, ntohs(addr.sin_port),
               o->device_id, (int)getpid());
    }
    fflush(stdout);
    for (;;) {
        if (listener != -1 && modbus_tcp_accept(ctx, &listener) == -1) die("accept");
        for (;;) {
            int len = modbus_receive(ctx, req);
            if (len > 0) {
                modbus_reply(ctx, req, len, map);
            } else if (len == -1 && listener != -1) {
                break;  /* the client went away: wait for the next one */
            }
            /* RTU: a bad frame or one for another device id is ignored, as a board does */
        }
        modbus_close(ctx);
    }
}

int main(int argc, char **argv) {
    struct options o = parse(argc, argv);
    return o.serve ? server(&o) : client(&o);
}
